"""Course material: the questions file, the exercises that end every notebook, and nbgrader's student edition.

The exercises follow one convention (CONTRIBUTING.md and tests/exercise_harness.py): after the markdown
cell "## Exercises", each exercise is a text cell (`exNN_k_text`), a solution cell (`exNN_k_solution`:
setup lines, then the answer between `### BEGIN SOLUTION` and `### END SOLUTION`) and a check cell
(`exNN_k_check`, 1 point). Each is self-contained, and `tests/wrong_answers/<notebook>.py` lists at least
two plausible wrong answers for each. The slow tests here grade all exercises of all notebooks with
nbgrader in one assignment, built from the notebooks' exercise sections one after another.
"""

import copy
import json
import os
import re
import shutil
import sys
from pathlib import Path

import exercise_harness as harness
import pytest

from scratchgpt.course import exercises as course

NOTEBOOKS = sorted(course.NOTEBOOKS.glob("stage*/*.ipynb"))          # 01 .. 12
WITH_EXERCISES = course.exercise_notebooks()                          # those that have exercises now
EXERCISES_HEADING = "## Exercises"


def cells(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))["cells"]


def nbgrader(cell):
    return cell["metadata"].get("nbgrader", {})


def text(cell):
    return "".join(cell["source"])


def number_of(path):
    return int(path.stem.split("_")[0])


# ---- questions -------------------------------------------------------------------------------------
def test_every_notebook_has_a_valid_question_set_and_shows_it():
    questions = course.load_questions()
    assert [number_of(p) for p in NOTEBOOKS] == list(range(1, 13))
    assert sorted(questions) == sorted(p.stem for p in NOTEBOOKS), "one question set per notebook, no other"
    for path in NOTEBOOKS:
        assert 5 <= len(questions[path.stem]) <= 10, path.stem
        sources = [text(c) for c in cells(path) if c["cell_type"] == "code"]
        assert any(f'quiz("{path.stem}")' in s for s in sources), f"{path.name} does not show its questions"
        # "7 short questions on this notebook": a count in the prose must be the file's
        said = [re.match(r"## Check your understanding\s+(\d+) short questions", text(c))
                for c in cells(path) if c["cell_type"] == "markdown"]
        for match in filter(None, said):
            assert int(match.group(1)) == len(questions[path.stem]), \
                f"{path.name} says {match.group(1)} questions; the file has {len(questions[path.stem])}"


def test_the_bank_is_balanced():
    """No answer position holds more than 35% of the correct answers; the correct choice is the longest in
    at most 40% of the questions (course.check_balance, run by load_questions)."""
    questions = course.load_questions()
    places = [q for items in questions.values() for q in items]
    positions = [q["answer"] for q in places]
    assert max(positions.count(p) for p in set(positions)) <= course.MAX_POSITION_SHARE * len(places)
    longest = [q for q in places if all(len(q["choices"][q["answer"]]) > len(c)
                                        for k, c in enumerate(q["choices"]) if k != q["answer"])]
    assert len(longest) <= course.MAX_LONGEST_SHARE * len(places)


def _all_at(position):
    def change(questions):
        for items in questions.values():
            for q in items[:4]:            # most questions: more than 35% of the bank in one place
                correct = q["choices"][q["answer"]]
                others = [c for c in q["choices"] if c != correct]
                q["choices"] = others[:position] + [correct] + others[position:]
                q["answer"] = position
    return change


def _correct_longest(questions):
    for items in questions.values():
        for q in items:
            q["choices"][q["answer"]] = q["choices"][q["answer"]] + " " + "x" * 200


@pytest.mark.parametrize("change, message", [
    (_all_at(0), r"position A holds \d+% of the correct answers \(\d+ of \d+, more than 35%\): move some "
                 r"of them: 01_text_data questions 1, 2, 3, 4.*; 02_attention questions 1, 2"),
    (_all_at(3), r"position D holds \d+% .*: .*09_lora questions 1, 2, 3, 4"),
    (_correct_longest, r"the correct choice is the longest in 100% of the questions \((\d+) of \1, more than "
                       r"40%\): .*01_text_data questions 1, 2, 3"),
])
def test_an_unbalanced_bank_is_refused_with_the_questions_named(change, message):
    questions = copy.deepcopy(course.load_questions())
    change(questions)
    with pytest.raises(course.QuestionError, match=message):
        course.check_questions(questions)


def test_a_small_balanced_bank_passes_and_the_rule_counts_ties_as_not_longest():
    q = [{"question": f"Q{i}?", "choices": ["aa", "bb", "cc", "dd"], "answer": i % 4, "why": "."}
         for i in range(8)]
    course.check_balance({"nb": q})                  # 2 of 8 in each place, every choice as long


@pytest.mark.parametrize("change, message", [
    (lambda q: q["01_text_data"][0].update(answer=7), "01_text_data, question 1: answer must be the index"),
    (lambda q: q["02_attention"][2].update(answer=True),
     "02_attention, question 3: answer must be the index"),
    (lambda q: q["01_text_data"][1].update(choices=["same", "same"]),
     "question 2: needs at least two different"),
    (lambda q: q["01_text_data"][0].update(why=" "), "non-empty string"),
    (lambda q: q["01_text_data"][0].pop("why"), "keys must be"),
    (lambda q: q.update(extra=q["01_text_data"][:4]), "extra: needs 5 to 10 questions, has 4"),
])
def test_a_broken_question_is_named(change, message):
    questions = copy.deepcopy(course.load_questions())
    change(questions)
    with pytest.raises(course.QuestionError, match=re.escape(message)):
        course.check_questions(questions)


def test_quiz_folds_each_answer_and_escapes_markup():
    questions = {"nb": [{"question": "Which id has `<|endoftext|>`?", "choices": ["0", "50256"], "answer": 1,
                         "why": "It is the last id & the only special one."}] * 5}
    page = course.quiz_html("nb", questions)
    assert page.count("<details><summary>Answer</summary><p><b>B. 50256</b>") == 5
    assert "<code>&lt;|endoftext|&gt;</code>" in page and "&amp; the only" in page
    assert "<|endoftext|>" not in page
    with pytest.raises(KeyError, match="no questions for 'other'"):
        course.quiz_html("other", questions)


# ---- the exercises, read from the notebooks (quick) ------------------------------------------------
def exercise_start(path, nb_cells):
    starts = [i for i, c in enumerate(nb_cells) if c["cell_type"] == "markdown"
              and text(c).startswith(EXERCISES_HEADING)]
    assert len(starts) == 1, f"{path.name}: needs one markdown cell that starts with '{EXERCISES_HEADING}'"
    return starts[0]


def exercise_section(path):
    """The cells from the markdown cell "## Exercises" to the end of the notebook."""
    nb_cells = cells(path)
    return nb_cells[exercise_start(path, nb_cells):]


def exercises_of(path):
    """[(text cell, solution cell, check cell)] of the notebook, checked against the convention."""
    nn = f"{number_of(path):02d}"
    nb_cells = cells(path)
    start = exercise_start(path, nb_cells)
    section = nb_cells[start:]
    assert not any(nbgrader(c) for c in nb_cells[:start]), f"{path.name}: an exercise cell before the section"
    code = [c for c in section if c["cell_type"] == "code"]
    assert all(nbgrader(c) for c in code), \
        f"{path.name}: the exercise section may hold only exercises (a code cell outside one would not run " \
        "for an exercise on its own)"
    found = []
    for k, i in enumerate([i for i, c in enumerate(section) if nbgrader(c).get("solution")], 1):
        where = f"{path.name}, exercise {number_of(path)}.{k}"
        assert 0 < i < len(section) - 1, where
        text_cell, solution, check = section[i - 1], section[i], section[i + 1]
        assert nbgrader(text_cell).get("grade_id") == f"ex{nn}_{k}_text" \
            and text_cell["cell_type"] == "markdown", \
            f"{where}: the cell before the solution must be its text, grade id ex{nn}_{k}_text"
        assert nbgrader(text_cell)["locked"] and not nbgrader(text_cell).get("grade"), where
        heading = f"### Exercise {number_of(path)}.{k} "
        assert heading in text(text_cell), f"{where}: its text starts with '{heading}· ...'"
        assert "*You are right when*" in text(text_cell), f"{where}: the text says how to tell you are right"
        assert nbgrader(solution)["grade_id"] == f"ex{nn}_{k}_solution", where
        source = text(solution)
        assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION") == 1, where
        assert solution["metadata"]["jupyter"]["source_hidden"], f"{where}: the solution is folded"
        grade = nbgrader(check)
        assert grade.get("grade_id") == f"ex{nn}_{k}_check" and check["cell_type"] == "code", where
        assert grade["grade"] and grade["locked"] and grade["points"] == 1, f"{where}: locked, 1 point"
        assert "assert" in text(check), where
        found.append((text_cell, solution, check))
    return found


def test_every_notebook_ends_with_three_or_four_exercises_in_the_convention():
    ids, problems = [], []
    for path in NOTEBOOKS:
        try:
            found = exercises_of(path)
        except AssertionError as err:
            problems.append(str(err))
            continue
        if not 3 <= len(found) <= 4:
            problems.append(f"{path.name} has {len(found)} exercises (3 to 4 wanted)")
        ids += [nbgrader(c)["grade_id"] for c in cells(path) if nbgrader(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique across the notebooks"
    assert not problems, "\n".join(problems)


def test_every_exercise_has_at_least_two_wrong_answers():
    """tests/wrong_answers/<notebook>.py lists, for every solution cell, two or more different plausible wrong
    answers (the slow test below runs them), and nothing for exercises that do not exist."""
    problems = []
    for path in WITH_EXERCISES:
        ids = [nbgrader(s)["grade_id"] for _, s, _ in exercises_of(path)]
        file = harness.WRONG_ANSWERS / f"{path.stem}.py"
        wrong = harness.wrong_answers(path) if file.exists() else {}
        if not file.exists():
            problems.append(f"{path.name}: no {file.relative_to(harness.REPO)}")
        for grade_id in sorted(set(wrong) - set(ids)):
            problems.append(f"{path.name}: wrong answers for {grade_id}, which is not an exercise")
        for _, solution, _ in exercises_of(path):
            grade_id = nbgrader(solution)["grade_id"]
            answers = [a.strip() for a in wrong.get(grade_id, [])]
            if not all(isinstance(a, str) and a for a in answers) or len(set(answers)) < 2:
                problems.append(f"{path.name}: {grade_id} needs at least two different wrong answers, "
                                f"has {len(set(answers))}")
            if harness.solution_of(text(solution)).strip() in answers:
                problems.append(f"{path.name}: a wrong answer to {grade_id} is its solution")
    assert not problems, "\n".join(problems)


# Checks must not give the expected value away. The rule, on the stored notebooks:
# - every number that a check cell prints (its stored output) is one the learner already sees: in the
#   exercise's text, in the code it gives (the solution cell outside the solution, the check's visible
#   part) or in the learner's own printed result (the solution cell's stored output);
# - the visible part of a check holds no number that matches, to the digits printed, a number of the
#   learner's printed result (other than 0-9 and numbers that print as 0) unless the text or the given
#   code has it: a check that compares with the answer's value does so between `### BEGIN HIDDEN TESTS`
#   and `### END HIDDEN TESTS`.
NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+(?:_\d{3})*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def split_hidden(source):
    """(visible part, hidden part) of a check cell's source, line by line as nbgrader's ClearHiddenTests
    cuts it: the lines from `### BEGIN HIDDEN TESTS` to `### END HIDDEN TESTS` are the hidden part."""
    visible, hidden, inside = [], [], False
    for line in source.split("\n"):
        if "### BEGIN HIDDEN TESTS" in line:
            inside = True
        elif "### END HIDDEN TESTS" in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), "\n".join(hidden)


def number_tokens(string):
    """[(value, decimals shown)] of every number written in `string` (1,024 and 1_024 are 1024)."""
    found = []
    for token in NUMBER.findall(string):
        plain = token.replace(",", "").replace("_", "")
        mantissa = re.split("[eE]", plain)[0]
        found.append((float(plain), len(mantissa.split(".")[1]) if "." in mantissa else 0))
    return found


def numbers(string):
    return {value for value, _ in number_tokens(string)}


def printed(cell):
    out = []
    for o in cell.get("outputs", []):
        if o["output_type"] == "stream":
            out.append("".join(o["text"]))
        elif "data" in o:
            out.append("".join(o["data"].get("text/plain", "")))
    return "".join(out)


def test_checks_do_not_show_the_expected_values():
    problems = []
    for path in WITH_EXERCISES:
        for text_cell, solution, check in exercises_of(path):
            grade_id = nbgrader(check)["grade_id"]
            visible, _ = split_hidden(text(check))
            head, rest = text(solution).split("### BEGIN SOLUTION")
            given = head + rest.split("### END SOLUTION")[1]
            shown = numbers(text(text_cell)) | numbers(given)
            learners = number_tokens(printed(solution))
            extra = numbers(printed(check)) - shown - numbers(visible) - {v for v, _ in learners}
            if extra:
                problems.append(f"{path.name} {grade_id}: its output prints {sorted(extra)}, which neither "
                                "the exercise's text, its code nor the learner's own output shows")
            revealed = {v for v in numbers(visible) - shown
                        for p, decimals in learners if p and (abs(v) >= 10 or v != int(v))
                        if (round(v, decimals) == p if decimals else v == p)}
            if revealed:
                problems.append(f"{path.name} {grade_id}: the visible check holds {sorted(revealed)}, the "
                                "value the answer prints: compare with it in hidden tests")
    assert not problems, "\n".join(problems)


# ---- the student edition, and grading every exercise of every notebook (slow) ---------------------
def combined_assignment(folder):
    """One notebook with the exercise sections of every notebook that has exercises, one after another:
    nbgrader runs it top to bottom, so each exercise is preceded by a cell that clears the namespace, as
    the learner's fresh kernel would be."""
    first = json.loads(WITH_EXERCISES[0].read_text(encoding="utf-8"))
    nb = {"cells": [], "metadata": {k: first["metadata"][k] for k in ("kernelspec", "language_info")
                                    if k in first["metadata"]},
          "nbformat": 4, "nbformat_minor": 5}
    for path in WITH_EXERCISES:
        exercises_of(path)                              # the convention holds, with clear messages if not
        for cell in exercise_section(path):
            if nbgrader(cell).get("grade_id", "").endswith("_text"):
                nb["cells"].append({"cell_type": "code", "execution_count": None, "metadata": {},
                                    "outputs": [], "source": "%reset -f"})
            cell = copy.deepcopy(cell)
            if cell["cell_type"] == "code":
                cell.update(outputs=[], execution_count=None)
            nb["cells"].append(cell)
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i}"
    path = folder / "exercises.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def autograde(course_dir, notebook, student):
    """nbgrader autogrades `notebook` as `student`'s submission: {check's grade id: (score, max score)} from
    the gradebook, and the autograded notebook's cells. Cells may take long (a cached model made again)."""
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    assignment = notebook.stem
    submitted = course_dir / "submitted" / student / assignment
    submitted.mkdir(parents=True, exist_ok=True)
    shutil.copy2(notebook, submitted / notebook.name)
    bin_dir = str(Path(sys.executable).parent)          # nbgrader runs its environment's `alembic`
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    config = Config()
    config.CourseDirectory.root = str(course_dir)
    config.CourseDirectory.course_id = "scratchgpt"
    config.Execute.timeout = 900
    result = NbGraderAPI(config=config).autograde(assignment, student, force=True, create=True)
    assert result["success"], result.get("error", "")[-3000:]
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        graded = gradebook.find_submission_notebook(assignment, assignment, student)
        scores = {g.name: (g.score, g.max_score) for g in graded.grades}
    return scores, cells(course_dir / "autograded" / student / assignment / notebook.name)


def error_of(cell):
    errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
    return (errors[-1]["ename"], errors[-1]["evalue"]) if errors else None


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """The combined assignment, its student edition (built by build_student_edition), and nbgrader's course
    folder."""
    pytest.importorskip("nbgrader")
    assert WITH_EXERCISES, "no notebook has exercises"
    folder = tmp_path_factory.mktemp("exercises")
    source = combined_assignment(folder)
    out = folder / "course"
    release = course.build_student_edition(out, [source])
    assert course._holds_only_its_own_output(out)          # marked as its own, before any grading adds files
    return out, source, release / source.stem / source.name


@pytest.mark.slow
def test_every_exercise_grades_its_solution_full_its_stub_zero_and_each_wrong_answer_zero(graded_course):
    """nbgrader grades all exercises of all notebooks, as one assignment: the instructor's version (the
    solutions) gets every point, each check its own; the student edition as handed out (the stubs) gets
    none. Then every wrong answer in tests/wrong_answers runs without error and fails its own check with
    an AssertionError that says what is wrong (tests/exercise_harness.py)."""
    out, source, student = graded_course
    checks = {nbgrader(c)["grade_id"]: c for c in cells(source) if nbgrader(c).get("grade")}
    problems = []

    scores, graded = autograde(out, source, "instructor")
    assert set(scores) == set(checks)
    for cell in graded:
        grade_id = nbgrader(cell).get("grade_id", "")
        if error_of(cell):
            problems.append(f"solution run: {grade_id or 'a cell'} fails: {': '.join(error_of(cell))[:300]}")
    problems += [f"solution run: {g} scores {s} of {m}" for g, (s, m) in sorted(scores.items()) if s != m]

    scores, graded = autograde(out, student, "learner")
    problems += [f"stub run: {g} scores {s} of {m}" for g, (s, m) in sorted(scores.items()) if s != 0]
    for cell in graded:
        if nbgrader(cell).get("solution") and (error_of(cell) or ("",))[0] != "NotImplementedError":
            problems.append(f"stub run: {nbgrader(cell)['grade_id']} does not stop at its stub")
        if not nbgrader(cell) and error_of(cell):
            problems.append(f"stub run: a cell outside the exercises fails: {error_of(cell)}")

    # the wrong answers, each on its own (the namespace cleared, the exercise's setup run again), in one
    # kernel for all notebooks: cheaper than a graded submission per answer, and the same cells
    kernel = harness.Kernel(WITH_EXERCISES[0].parent)
    try:
        for path in WITH_EXERCISES:
            outcomes = harness.try_answers(path, answers=("wrong",), kernel=kernel)
            problems += [f"{path.stem}: {p}" for p in harness.problems(outcomes, path)]
    finally:
        kernel.close()
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_the_student_edition_hides_the_solutions_and_the_hidden_tests(graded_course):
    """In the student edition no solution code is left, no check shows `### BEGIN HIDDEN TESTS`, every
    check whose instructor version has hidden tests has lost those lines (the rest of the check is kept),
    and the other cells are as they were, but for the note that says where the solutions are."""
    _, source, student = graded_course
    theirs, mine = cells(student), cells(source)
    assert len(theirs) == len(mine)
    for instructor, learner in zip(mine, theirs):
        grade_id, shown = nbgrader(instructor).get("grade_id", ""), text(learner)
        assert "### BEGIN SOLUTION" not in shown and "HIDDEN TESTS" not in shown, grade_id
        if nbgrader(instructor).get("solution"):
            assert "raise NotImplementedError()" in shown
            solution = [line for line in harness.solution_of(text(instructor)).splitlines() if line.strip()]
            assert not any(line in shown.splitlines() for line in solution), grade_id
            assert "source_hidden" not in learner["metadata"].get("jupyter", {}), grade_id
        elif nbgrader(instructor).get("grade"):
            visible, hidden = split_hidden(text(instructor))
            assert shown == visible, f"{grade_id}: the check's visible part is not kept as it is"
            lost = [line for line in hidden.splitlines() if line.strip() and line not in visible.splitlines()]
            assert not any(line in shown.splitlines() for line in lost), f"{grade_id} shows its hidden tests"
        else:           # unchanged, but for the note on where the solutions are
            assert shown == text(instructor).replace(course.SOLUTIONS_NOTE, course.STUDENT_NOTE)
    notes = [text(c) for c in theirs if c["cell_type"] == "markdown"]
    assert sum(course.STUDENT_NOTE in t for t in notes) == len(WITH_EXERCISES), "one note per notebook"
    assert not any("folded away" in t for t in notes)


def test_the_build_refuses_a_folder_it_did_not_make(tmp_path):
    pytest.importorskip("nbgrader")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        course.build_student_edition(tmp_path, WITH_EXERCISES[:1])
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ---- question bank validation --------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda q: q["01_text_data"].append(copy.deepcopy(q["01_text_data"][0])),
     "01_text_data, question 2?\\d: the same question as 01_text_data, question 1"),
    (lambda q: q["01_text_data"][0].update(choices="ab"), "choices must be a list of texts, got str"),
    (lambda q: q["01_text_data"][0].update(choices=None), "choices must be a list of texts, got NoneType"),
    (lambda q: q["01_text_data"][0].update(choices=["a", 3]), "each choice"),
    (lambda q: q["01_text_data"][0].update(answer=-1),
     r"answer must be the index of one choice \(0..\d\), got -1"),
    (lambda q: q["01_text_data"].__setitem__(0, "a question"), "must be an object with keys"),
])
def test_more_broken_questions_are_named(change, message):
    questions = copy.deepcopy(course.load_questions())
    change(questions)
    with pytest.raises(course.QuestionError, match=message):
        course.check_questions(questions)


def test_a_notebook_listed_twice_in_the_file_is_refused(tmp_path):
    """json.loads keeps the last of two equal keys: the first set of questions would vanish silently."""
    text = course.QUESTIONS_FILE.read_text(encoding="utf-8")
    first = json.loads(text)["01_text_data"]
    doubled = text.rstrip().removesuffix("}") + ', "01_text_data": ' + json.dumps(first) + "}"
    path = tmp_path / "questions.json"
    path.write_text(doubled, encoding="utf-8")
    with pytest.raises(course.QuestionError, match="the key '01_text_data' twice"):
        course.load_questions(path)
    from scratchgpt.course.__main__ import main
    with pytest.raises(SystemExit) as exit_:
        main(["check-questions", str(path)])
    assert exit_.value.code == 2


def test_quiz_html_checks_the_questions_it_is_given():
    good = {"question": "Which?", "choices": ["a", "b"], "answer": 1, "why": "Because."}
    for bad, message in [(good | {"answer": -1}, "answer must be the index"),
                         (good | {"choices": "ab"}, "choices must be a list")]:
        with pytest.raises(course.QuestionError, match=message):
            course.quiz_html("nb", {"nb": [good, bad]})
    assert "B. b" in course.quiz_html("nb", {"nb": [good]})


# ---- the student edition never touches what it did not make ----------------------------------------
@pytest.fixture
def fake_nbgrader(monkeypatch):
    """nbgrader's generate_assignment stood in for by a copy (the real one is slow, and tested above):
    these tests are about which folders the build may touch."""
    pytest.importorskip("nbgrader")

    def generate(root, command, name, **kwargs):
        release = root / "release" / name
        release.mkdir(parents=True)
        shutil.copy2(root / "source" / name / f"{name}.ipynb", release / f"{name}.ipynb")
        (root / "gradebook.db").write_text("assignments: " + name)
    monkeypatch.setattr(course, "_nbgrader", generate)


def listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_an_instructors_course_folder_is_refused_untouched(tmp_path, fake_nbgrader):
    instructor = tmp_path / "C"
    instructor.mkdir()
    config = 'c=get_config()\nc.CourseDirectory.course_id="cs101"\n'
    (instructor / "nbgrader_config.py").write_text(config)
    with pytest.raises(FileExistsError, match="not a student edition built by this command"):
        course.build_student_edition(instructor, WITH_EXERCISES[:1])
    assert (instructor / "nbgrader_config.py").read_text() == config
    assert listing(tmp_path) == ["C", "C/nbgrader_config.py"]


@pytest.mark.parametrize("out, notebook, error, message", [
    ("notebooks/student", None, ValueError, "inside .*notebooks: pytest runs every notebook there"),
    ("out", "README.md", ValueError, "README.md is not a notebook"),
    ("out", "notebooks/missing.ipynb", FileNotFoundError, "no notebook .*missing.ipynb"),
    ("a-file", None, FileExistsError, "a-file is a file, not a folder"),
])
def test_bad_arguments_are_refused_before_anything_is_made(tmp_path, fake_nbgrader, out, notebook, error,
                                                           message):
    from scratchgpt.paths import REPO_ROOT

    (tmp_path / "a-file").write_text("mine")
    out = REPO_ROOT / out if out.startswith("notebooks") else tmp_path / out if out == "a-file" \
        else tmp_path / "new" / out
    before = listing(tmp_path)
    with pytest.raises(error, match=message):
        course.build_student_edition(out, [REPO_ROOT / notebook] if notebook else WITH_EXERCISES[:1])
    assert listing(tmp_path) == before and not (REPO_ROOT / "notebooks" / "student").exists()


def test_a_notebook_without_exercises_is_refused(tmp_path, fake_nbgrader):
    plain = tmp_path / "plain.ipynb"
    plain.write_text(json.dumps({"cells": [{"cell_type": "code", "metadata": {}, "source": "1"}]}))
    with pytest.raises(ValueError, match="plain.ipynb has no exercises"):
        course.build_student_edition(tmp_path / "out", [plain])
    assert not (tmp_path / "out").exists()


def test_a_failed_build_leaves_nothing_half_made(tmp_path, monkeypatch, fake_nbgrader):
    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")
    monkeypatch.setattr(course, "_unfold_stubs", read_only)
    with pytest.raises(OSError, match="cannot build the student edition at .*: Read-only file system; "
                                      "nothing was changed"):
        course.build_student_edition(tmp_path / "deep" / "out", WITH_EXERCISES[:1])
    assert listing(tmp_path) == []                   # not even the parent folder it made


def test_its_own_output_is_rebuilt_but_not_once_grades_were_added(tmp_path, fake_nbgrader):
    out = tmp_path / "out"
    release = course.build_student_edition(out, WITH_EXERCISES[:1])
    first = listing(out)
    assert course.MARKER in first and (release / WITH_EXERCISES[0].stem).is_dir()
    assert course.build_student_edition(out, WITH_EXERCISES[1:2]) == release      # its own: replaced
    assert (release / WITH_EXERCISES[1].stem).is_dir()
    assert not (release / WITH_EXERCISES[0].stem).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]                           # no temporary left
    (out / "gradebook.db").write_text("grades of a class")                           # autograde was run
    with pytest.raises(FileExistsError, match="files were added or changed since"):
        course.build_student_edition(out, WITH_EXERCISES[:1])
    assert (out / "gradebook.db").read_text() == "grades of a class"


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path, fake_nbgrader, capsys):
    from scratchgpt.course.__main__ import main

    (tmp_path / "C").mkdir()
    (tmp_path / "C" / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(SystemExit) as exit_:
        main(["student-edition", str(tmp_path / "C"), str(WITH_EXERCISES[0])])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "student-edition: error: " in err and "not a student edition" in err and "Traceback" not in err
