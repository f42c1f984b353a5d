"""Course material around the notebooks: check-your-understanding questions and the student edition.

The questions of every notebook live in one data file, `notebooks/questions.json`; a notebook shows
its own with `quiz("01_text_data")`, each answer folded in a `<details>` block the learner opens. A
question may carry its Korean text under `"ko"` (question, choices in the same order, why), which the
Korean edition shows with `quiz("01_text_data", lang="ko")`.

Exercises end every notebook from 01 to 12. Their solution cells follow nbgrader's format (code between
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
import tempfile
from pathlib import Path

from ..data import sha256_of
from ..paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
QUESTIONS_FILE = NOTEBOOKS / "questions.json"


class QuestionError(ValueError):
    """The questions file breaks a rule; the message names the notebook and the question."""


# The rules, one function each, so that a rule is added by writing one more and listing it. A rule
# returns what is wrong (a sentence), or None. Question rules run in order (later ones may rely on the
# shape the earlier ones checked); set rules see one notebook's list of questions.
QUESTION_KEYS = ("question", "choices", "answer", "why")
TRANSLATED_KEYS = ("question", "choices", "why")      # a translation (`"ko"`) gives these, not the answer
LANGUAGES = ("en", "ko")


def _keys(q) -> str | None:
    if not isinstance(q, dict):
        return f"must be an object with keys {', '.join(QUESTION_KEYS)}; got a {type(q).__name__}"
    if set(q) - {"ko"} != set(QUESTION_KEYS):
        return f"keys must be {', '.join(QUESTION_KEYS)} (and ko); got {sorted(q)}"
    return None


def _translation(q) -> str | None:
    """The Korean text, where given: the same choices in the same order, so the answer index holds."""
    if "ko" not in q:
        return None
    ko = q["ko"]
    if not isinstance(ko, dict) or set(ko) != set(TRANSLATED_KEYS):
        return f"ko must be an object with keys {', '.join(TRANSLATED_KEYS)}"
    texts = [ko["question"], ko["why"], *(ko["choices"] if isinstance(ko["choices"], list) else [None])]
    if not all(isinstance(x, str) and x.strip() for x in texts):
        return "ko: every text must be a non-empty string, and choices a list of them"
    if len(ko["choices"]) != len(q["choices"]) or len(set(ko["choices"])) != len(ko["choices"]):
        return f"ko: needs {len(q['choices'])} different choices, as the English has, in the same order"
    return None


def _texts(q) -> str | None:
    if not all(isinstance(q[k], str) and q[k].strip() for k in ("question", "why")):
        return "every text must be a non-empty string (question, why)"
    return None


def _choices(q) -> str | None:
    choices = q["choices"]
    # a string is a sequence too: "ab" would be shown as two choices, "a" and "b"
    if not isinstance(choices, list):
        return f"choices must be a list of texts, got {type(choices).__name__}"
    if not all(isinstance(c, str) and c.strip() for c in choices):
        return "every text must be a non-empty string (each choice)"
    if len(choices) < 2 or len(set(choices)) != len(choices):
        return "needs at least two different choices"
    return None


def _answer(q) -> str | None:
    answer, n = q["answer"], len(q["choices"])
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < n:
        return f"answer must be the index of one choice (0..{n - 1}), got {answer!r}"
    return None


QUESTION_RULES = [_keys, _texts, _choices, _answer, _translation]


def _set_size(items) -> str | None:
    if not isinstance(items, list) or not 5 <= len(items) <= 10:
        return f"needs 5 to 10 questions, has {len(items) if isinstance(items, list) else repr(items)}"
    return None


SET_RULES = [_set_size]

# Across the bank the correct answer must not be guessable from where it stands or from its length: no
# position (A, B, ...) holds more than MAX_POSITION_SHARE of the correct answers, and the correct choice
# is the longest one in at most MAX_LONGEST_SHARE of the questions.
MAX_POSITION_SHARE = 0.35
MAX_LONGEST_SHARE = 0.40


def _named(places: list[tuple[str, int]]) -> str:
    """[("01_text_data", 1), ("01_text_data", 4), ("02_attention", 2)] -> "01_text_data questions 1, 4;
    02_attention question 2"."""
    by_notebook: dict[str, list[str]] = {}
    for name, i in places:
        by_notebook.setdefault(name, []).append(str(i))
    return "; ".join(f"{name} question{'s' if len(ns) > 1 else ''} {', '.join(ns)}"
                     for name, ns in by_notebook.items())


def check_balance(questions: dict) -> None:
    """No answer position holds more than MAX_POSITION_SHARE of the bank's correct answers, and the correct
    choice is longer than every other choice in at most MAX_LONGEST_SHARE of its questions. The message
    names the questions to change. Expects questions that passed the question rules."""
    places = [(name, i, q) for name, items in questions.items() for i, q in enumerate(items, 1)]
    if not places:
        return
    total = len(places)
    at: dict[int, list[tuple[str, int]]] = {}
    for name, i, q in places:
        at.setdefault(q["answer"], []).append((name, i))
    for position, where in sorted(at.items()):
        if len(where) / total > MAX_POSITION_SHARE:
            raise QuestionError(
                f"position {chr(ord('A') + position)} holds {len(where) / total:.0%} of the correct answers "
                f"({len(where)} of {total}, more than {MAX_POSITION_SHARE:.0%}): move some of them: "
                f"{_named(where)}")
    longest = [(name, i) for name, i, q in places
               if all(len(q["choices"][q["answer"]]) > len(c)
                      for k, c in enumerate(q["choices"]) if k != q["answer"])]
    if len(longest) / total > MAX_LONGEST_SHARE:
        raise QuestionError(
            f"the correct choice is the longest in {len(longest) / total:.0%} of the questions "
            f"({len(longest)} of {total}, more than {MAX_LONGEST_SHARE:.0%}): give some wrong choices as "
            "much to say: "
            f"{_named(longest)}")


def check_question(q, where: str) -> None:
    """One question against every rule of QUESTION_RULES; `where` names it in the error."""
    for rule in QUESTION_RULES:
        problem = rule(q)
        if problem:
            raise QuestionError(f"{where}: {problem}")


def check_questions(questions: dict) -> None:
    """Every notebook's set holds 5 to 10 questions; each has a text, at least two distinct choices and
    exactly one correct answer (the index of a choice) with a reason; no question is asked twice; and
    across the bank the answers are balanced (`check_balance`)."""
    if not isinstance(questions, dict) or not questions:
        raise QuestionError("the questions file must map notebook names to lists of questions")
    asked: dict[str, str] = {}                          # a question's text -> where it was first asked
    for name, items in questions.items():
        for rule in SET_RULES:
            problem = rule(items)
            if problem:
                raise QuestionError(f"{name}: {problem}")
        for i, q in enumerate(items, 1):
            where = f"{name}, question {i}"
            check_question(q, where)
            text = " ".join(q["question"].split()).lower()
            if text in asked:
                raise QuestionError(f"{where}: the same question as {asked[text]}")
            asked[text] = where
    check_balance(questions)


def _refuse_duplicate_keys(pairs: list[tuple]) -> dict:
    """json.loads keeps the last of two equal keys: a second set for one notebook would silently replace
    the first. Called for every object in the file."""
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise QuestionError(f"the questions file has the key {', '.join(map(repr, repeated))} twice in one "
                            "object: merge the two")
    return dict(pairs)


def load_questions(path: str | Path = QUESTIONS_FILE) -> dict[str, list[dict]]:
    questions = json.loads(Path(path).read_text(encoding="utf-8"), object_pairs_hook=_refuse_duplicate_keys)
    check_questions(questions)
    return questions


def _inline(text: str) -> str:
    """Escape HTML, then render `code` spans (the only markup the questions use)."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def quiz_html(name: str, questions: dict | None = None, lang: str = "en") -> str:
    """The notebook's questions as HTML: choices lettered A, B, ...; each answer folded in <details>.
    Questions given here are checked as the file's are, one by one (an answer of -1 would otherwise mark
    the last choice correct). `lang="ko"`: the Korean text, which every question must then have."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    questions = load_questions() if questions is None else questions
    if name not in questions:
        raise KeyError(f"no questions for {name!r}; the file has {sorted(questions)}")
    if not isinstance(questions[name], list):
        raise QuestionError(f"{name}: must be a list of questions, got {type(questions[name]).__name__}")
    for i, q in enumerate(questions[name], 1):
        check_question(q, f"{name}, question {i}")
        if lang == "ko" and "ko" not in q:
            raise QuestionError(f"{name}, question {i}: has no Korean text (ko)")
    summary = {"en": "Answer", "ko": "정답"}[lang]
    out = ["<ol>"]
    for q in questions[name]:
        text = q if lang == "en" else q["ko"]
        letters = [chr(ord("A") + i) for i in range(len(text["choices"]))]
        choices = "".join(f"<li>{letter}. {_inline(c)}</li>" for letter, c in zip(letters, text["choices"]))
        answer = f"{letters[q['answer']]}. {_inline(text['choices'][q['answer']])}"
        out.append(f"<li><p>{_inline(text['question'])}</p><ul style=\"list-style: none\">{choices}</ul>"
                   f"<details><summary>{summary}</summary><p><b>{answer}</b>: {_inline(text['why'])}</p>"
                   "</details></li>")
    out.append("</ol>")
    return "\n".join(out)


def quiz(name: str, lang: str = "en"):
    """Show the notebook's questions (for a notebook cell); `lang="ko"` in the Korean edition."""
    from IPython.display import HTML

    return HTML(quiz_html(name, lang=lang))


# ---- the student edition ---------------------------------------------------------------------------
def exercise_notebooks(lang: str = "en") -> list[Path]:
    """The notebooks that end with graded exercises (their cells carry nbgrader metadata); `lang="ko"`:
    those of the Korean edition (notebooks/ko/)."""
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    found = []
    for path in sorted((NOTEBOOKS if lang == "en" else NOTEBOOKS / "ko").glob("stage*/*.ipynb")):
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
        # nbgrader's error is its own traceback: its last lines say what went wrong
        last = [line for line in result.get("error", "").splitlines() if line.strip()][-3:]
        raise RuntimeError(f"nbgrader {command} {' '.join(args)} failed: " + " / ".join(last))


# The student edition's folder holds this file: the list of files the build made, with their sha256. A
# later build replaces the folder only while it holds exactly those files, unchanged (not an
# instructor's nbgrader course, not submissions or grades added since).
MARKER = ".scratchgpt-student-edition.json"


def _files_of(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` but the marker, by path relative to it."""
    return {path.relative_to(folder).as_posix(): sha256_of(path)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != MARKER}


def _holds_only_its_own_output(folder: Path) -> bool:
    try:
        made = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return made == _files_of(folder)


def _check_exercise_notebook(path: Path) -> None:
    """A clear error for a path that is not a notebook with exercises, before anything is built."""
    if not path.exists():
        raise FileNotFoundError(f"no notebook {path}")
    if not path.is_file() or path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook (.ipynb file)")
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a readable notebook ({err})") from err
    if not any(isinstance(c, dict) and c.get("metadata", {}).get("nbgrader", {}).get("solution")
               for c in cells):
        raise ValueError(f"{path.name} has no exercises (no nbgrader solution cells): "
                         "there is nothing to make a student edition of")


def _check_out(out: Path) -> None:
    """Refuse an output folder whose files this command did not make, or one under notebooks/."""
    resolved = out.resolve()
    if resolved == NOTEBOOKS.resolve() or NOTEBOOKS.resolve() in resolved.parents:
        raise ValueError(f"{out} is inside {NOTEBOOKS}: pytest runs every notebook there, and the student "
                         "edition's stubs raise NotImplementedError. Build it outside notebooks/")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder: choose a new folder for the student edition")
    if out.is_dir() and any(out.iterdir()) and not _holds_only_its_own_output(out):
        raise FileExistsError(f"{out} is not empty and is not a student edition built by this command "
                              f"(or files were added or changed since: {MARKER} lists its own). Nothing "
                              "was changed; choose a new folder")


def build_student_edition(out: str | Path, notebooks: list[str | Path] | None = None,
                          lang: str = "en") -> Path:
    """Build the student edition into `out` (an nbgrader course folder) and return its `release` folder.

    Each notebook becomes one nbgrader assignment named after it: `out/source/<name>/<name>.ipynb` is
    the instructor's version (with solutions), `out/release/<name>/<name>.ipynb` the student's. The
    notebooks find the data and the package through the installed package, so the student versions
    run from anywhere. `lang="ko"` builds it from the Korean edition's notebooks.

    It never overwrites what it did not make: `out` must be new, empty, or this command's own earlier
    output, unchanged (`MARKER`), and not under notebooks/. The edition is built in a temporary folder
    beside `out` and renamed into place when complete, so a failure leaves `out` as it was.
    """
    try:
        import nbgrader  # noqa: F401
    except ImportError as err:
        raise RuntimeError("the student edition needs nbgrader: pip install -e .[course]") from err
    out = Path(out)
    paths = [Path(p) for p in notebooks] if notebooks else exercise_notebooks(lang)
    for path in paths:
        _check_exercise_notebook(path)
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"two notebooks have the same name, {twice}: each becomes an assignment of its name")
    _check_out(out)

    made_parents = [p for p in reversed(out.absolute().parents) if not p.exists()]
    build = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part"))
        umask = os.umask(0)
        os.umask(umask)
        build.chmod(0o777 & ~umask)      # mkdtemp makes it private: give it a normal folder's mode
        # marks the folder as a course (for nbgrader's command line too, e.g. `nbgrader autograde` run in it)
        (build / "nbgrader_config.py").write_text(
            'c = get_config()\nc.CourseDirectory.course_id = "scratchgpt"\n', encoding="utf-8")
        for path in paths:
            source = build / "source" / path.stem
            source.mkdir(parents=True)
            shutil.copy2(path, source / path.name)
            _nbgrader(build, "generate_assignment", path.stem)
            _unfold_stubs(build / "release" / path.stem / path.name)
        marker = {"made_by": "python -m scratchgpt.course student-edition", "files": _files_of(build)}
        (build / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")
        _move_into_place(build, out)
    except OSError as err:
        raise OSError(err.errno, f"cannot build the student edition at {out}: "
                                 f"{err.strerror or err}; nothing was changed") from err
    finally:
        if build is not None and build.exists():
            shutil.rmtree(build, ignore_errors=True)
        for parent in reversed(made_parents):          # folders made for a build that failed
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
    return out / "release"


def _move_into_place(build: Path, out: Path) -> None:
    """Rename the finished `build` to `out`; an earlier edition there (checked to be this command's own)
    is moved aside first and deleted only once the new one is in place."""
    if not out.exists():
        build.rename(out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    old.rmdir()
    out.rename(old)
    try:
        build.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


# The exercises' introduction tells the reader of the instructor's notebooks where the folded solutions
# are; the student edition has none, so there it says what the cells hold instead. The Korean edition's
# introduction holds the Korean note word for word.
SOLUTIONS_NOTE = ("The solutions are in those cells, folded away: the cell shows only `...` until you click "
                  "it. Instructors can build an edition without them (see the README, *For instructors*).")
STUDENT_NOTE = ("In this edition those cells hold a stub that raises `NotImplementedError`: replace it with "
                "your code.")
KO_SOLUTIONS_NOTE = ("풀이는 그 셀 안에 접혀 있습니다. 셀을 클릭하기 전까지는 "
                     "`...`만 보입니다. 강사는 풀이를 뺀 판을 만들 수 있습니다"
                     "(README의 *For instructors* 참고).")
KO_STUDENT_NOTE = ("이 판에서는 그 셀에 `NotImplementedError`를 일으키는 빈 틀(stub)이 "
                   "들어 있습니다. 여러분의 코드로 바꾸세요.")
NOTES = {"en": (SOLUTIONS_NOTE, STUDENT_NOTE), "ko": (KO_SOLUTIONS_NOTE, KO_STUDENT_NOTE)}


def _unfold_stubs(path: Path) -> None:
    """The instructor's notebooks fold the solution cells away; a student must see the stubs to fill them in
    (and read no promise of solutions)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        for solutions_note, student_note in NOTES.values():
            if cell["cell_type"] == "markdown" and solutions_note in text:
                cell["source"] = text.replace(solutions_note, student_note)
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
