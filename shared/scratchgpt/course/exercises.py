"""Course material around the notebooks: check-your-understanding questions and the student edition.

The questions of every notebook live in one data file, `notebooks/questions.json`; a notebook shows
its own with `quiz("01_text_data")`, each answer folded in a `<details>` block the learner opens.

Exercises end every notebook from 01 to 08. Their solution cells follow nbgrader's format (code between
`### BEGIN SOLUTION` and `### END SOLUTION`, cell metadata marking solution and graded cells), so
`python -m scratchgpt.course student-edition OUT` (`course/__main__.py`) builds the student edition
with nbgrader (`pip install -e .[course]`): the same notebooks with every solution replaced by a stub.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import sys
from pathlib import Path

from ..paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
QUESTIONS_FILE = NOTEBOOKS / "questions.json"


class QuestionError(ValueError):
    """The questions file breaks a rule; the message names the notebook and the question."""


def check_questions(questions: dict) -> None:
    """Every notebook's set holds 5 to 10 questions; each has a text, at least two distinct choices and
    exactly one correct answer (the index of a choice) with a reason."""
    if not isinstance(questions, dict) or not questions:
        raise QuestionError("the questions file must map notebook names to lists of questions")
    for name, items in questions.items():
        if not isinstance(items, list) or not 5 <= len(items) <= 10:
            raise QuestionError(f"{name}: needs 5 to 10 questions, "
                                f"has {len(items) if isinstance(items, list) else items!r}")
        for i, q in enumerate(items, 1):
            where = f"{name}, question {i}"
            if set(q) != {"question", "choices", "answer", "why"}:
                raise QuestionError(f"{where}: keys must be question, choices, answer, why; got {sorted(q)}")
            texts = [q["question"], q["why"], *q["choices"]]
            if not all(isinstance(t, str) and t.strip() for t in texts):
                raise QuestionError(f"{where}: every text must be a non-empty string")
            if len(q["choices"]) < 2 or len(set(q["choices"])) != len(q["choices"]):
                raise QuestionError(f"{where}: needs at least two different choices")
            if not isinstance(q["answer"], int) or isinstance(q["answer"], bool) \
                    or not 0 <= q["answer"] < len(q["choices"]):
                raise QuestionError(f"{where}: answer must be the index of one choice "
                                    f"(0..{len(q['choices']) - 1})")


def load_questions(path: str | Path = QUESTIONS_FILE) -> dict[str, list[dict]]:
    questions = json.loads(Path(path).read_text(encoding="utf-8"))
    check_questions(questions)
    return questions


def _inline(text: str) -> str:
    """Escape HTML, then render `code` spans (the only markup the questions use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def quiz_html(name: str, questions: dict | None = None) -> str:
    """The notebook's questions as HTML: choices lettered A, B, ...; each answer folded in <details>."""
    questions = questions or load_questions()
    if name not in questions:
        raise KeyError(f"no questions for {name!r}; the file has {sorted(questions)}")
    out = ["<ol>"]
    for q in questions[name]:
        letters = [chr(ord("A") + i) for i in range(len(q["choices"]))]
        choices = "".join(f"<li>{letter}. {_inline(c)}</li>" for letter, c in zip(letters, q["choices"]))
        answer = f"{letters[q['answer']]}. {_inline(q['choices'][q['answer']])}"
        out.append(f"<li><p>{_inline(q['question'])}</p><ul style=\"list-style: none\">{choices}</ul>"
                   f"<details><summary>Answer</summary><p><b>{answer}</b>: {_inline(q['why'])}</p>"
                   "</details></li>")
    out.append("</ol>")
    return "\n".join(out)


def quiz(name: str):
    """Show the notebook's questions (for a notebook cell)."""
    from IPython.display import HTML

    return HTML(quiz_html(name))


# ---- the student edition ---------------------------------------------------------------------------
def exercise_notebooks() -> list[Path]:
    """The notebooks that end with graded exercises (their cells carry nbgrader metadata)."""
    found = []
    for path in sorted(NOTEBOOKS.glob("stage*/*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        if any(c.get("metadata", {}).get("nbgrader", {}).get("solution") for c in cells):
            found.append(path)
    return found


def _nbgrader(course: Path, command: str, *args, **kwargs) -> None:
    """Run one command of nbgrader's Python API on the course folder; its log goes to course/nbgrader.log."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    # nbgrader runs the `alembic` command of its own environment: put that environment first on PATH
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.course_id = "scratchgpt"
    result = getattr(NbGraderAPI(config=config), command)(*args, force=True, **kwargs)
    with open(course / "nbgrader.log", "a", encoding="utf-8") as log:
        log.write(result.get("log", "") + result.get("error", ""))
    if not result["success"]:
        raise RuntimeError(f"nbgrader {command} {' '.join(args)} failed:\n{result.get('error', '')}")


def build_student_edition(out: str | Path, notebooks: list[str | Path] | None = None) -> Path:
    """Build the student edition into `out` (an nbgrader course folder) and return its `release` folder.

    Each notebook becomes one nbgrader assignment named after it: `out/source/<name>/<name>.ipynb` is
    the instructor's version (with solutions), `out/release/<name>/<name>.ipynb` the student's. The
    notebooks find the data and the package through the installed package, so the student versions
    run from anywhere. Refuses to write into a non-empty folder that is not such a course folder.
    """
    try:
        import nbgrader  # noqa: F401
    except ImportError as err:
        raise RuntimeError("the student edition needs nbgrader: pip install -e .[course]") from err
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "nbgrader_config.py").exists():
        raise FileExistsError(f"{out} is not empty and is not a course folder built by this command")
    paths = [Path(p) for p in notebooks] if notebooks else exercise_notebooks()
    out.mkdir(parents=True, exist_ok=True)
    # marks the folder as a course (for nbgrader's command line too, e.g. `nbgrader autograde` run in it)
    (out / "nbgrader_config.py").write_text('c = get_config()\nc.CourseDirectory.course_id = "scratchgpt"\n',
                                            encoding="utf-8")
    for path in paths:
        if not path.exists():
            raise FileNotFoundError(f"no notebook {path}")
        source = out / "source" / path.stem
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, source / path.name)
        _nbgrader(out, "generate_assignment", path.stem)
        _unfold_stubs(out / "release" / path.stem / path.name)
    return out / "release"


# The exercises' introduction tells the reader of the instructor's notebooks where the folded solutions
# are; the student edition has none, so there it says what the cells hold instead.
SOLUTIONS_NOTE = ("The solutions are in those cells, folded away: the cell shows only `...` until you click "
                  "it. Instructors can build an edition without them (see the README, *For instructors*).")
STUDENT_NOTE = ("In this edition those cells hold a stub that raises `NotImplementedError`: replace it with "
                "your code.")


def _unfold_stubs(path: Path) -> None:
    """The instructor's notebooks fold the solution cells away; a student must see the stubs to fill them in
    (and read no promise of solutions)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and SOLUTIONS_NOTE in text:
            cell["source"] = text.replace(SOLUTIONS_NOTE, STUDENT_NOTE)
        if cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["metadata"].get("jupyter", {}).pop("source_hidden", None)
            if not cell["metadata"].get("jupyter", True):
                del cell["metadata"]["jupyter"]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def autograde(course: str | Path, notebook: str | Path, student: str = "instructor") -> tuple[float, float]:
    """Grade `notebook` (a filled-in copy of one assignment) as `student`'s submission with nbgrader;
    returns (score, max_score). nbgrader runs the notebook top to bottom, then scores its graded cells."""
    course, notebook = Path(course), Path(notebook)
    assignment = notebook.stem
    submitted = course / "submitted" / student / assignment
    submitted.mkdir(parents=True, exist_ok=True)
    shutil.copy2(notebook, submitted / notebook.name)
    _nbgrader(course, "autograde", assignment, student, create=True)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        result = gradebook.find_submission(assignment, student)
        return result.score, result.max_score
