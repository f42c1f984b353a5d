"""Course material: the questions file, the exercises in notebooks 01-08, and nbgrader's student edition."""

import copy
import json
import re

import pytest

from scratchgpt.course import exercises as course

EXERCISE_NOTEBOOKS = sorted(course.NOTEBOOKS.glob("stage[123]_*/0[1-8]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def nbgrader(cell):
    return cell["metadata"].get("nbgrader", {})


def test_every_notebook_has_a_valid_question_set_and_shows_it():
    questions = course.load_questions()
    assert len(EXERCISE_NOTEBOOKS) == 8
    for path in EXERCISE_NOTEBOOKS:
        assert 5 <= len(questions[path.stem]) <= 10, path.stem
        sources = ["".join(c["source"]) for c in cells(path) if c["cell_type"] == "code"]
        assert any(f'quiz("{path.stem}")' in s for s in sources), f"{path.name} does not show its questions"


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


def test_every_exercise_has_a_marked_solution_and_a_graded_check():
    ids = []
    for path in EXERCISE_NOTEBOOKS:
        nb_cells = cells(path)
        solutions = [i for i, c in enumerate(nb_cells) if nbgrader(c).get("solution")]
        assert 3 <= len(solutions) <= 6, f"{path.name} has {len(solutions)} exercises"
        for i in solutions:
            source = "".join(nb_cells[i]["source"])
            assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION") == 1, path.name
            assert nb_cells[i]["metadata"]["jupyter"]["source_hidden"]          # folded for the learner
            check = nbgrader(nb_cells[i + 1])
            assert check["grade"] and check["locked"] and check["points"] > 0, (path.name, i)
            assert "assert" in "".join(nb_cells[i + 1]["source"])
        ids += [nbgrader(c)["grade_id"] for c in nb_cells if nbgrader(c)]
    assert len(ids) == len(set(ids))


def solution_lines(cell):
    source = "".join(cell["source"])
    body = source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    return [line for line in body.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def edition(tmp_path_factory):
    pytest.importorskip("nbgrader")
    out = tmp_path_factory.mktemp("course")
    return out, course.build_student_edition(out, EXERCISE_NOTEBOOKS)


@pytest.mark.slow
def test_the_student_edition_has_no_solution_code(edition):
    _, release = edition
    for path in EXERCISE_NOTEBOOKS:
        student = cells(release / path.stem / path.name)
        instructor = cells(path)
        assert len(student) == len(instructor)
        for mine, theirs in zip(instructor, student):
            text = "".join(theirs["source"])
            assert "### BEGIN SOLUTION" not in text
            if nbgrader(mine).get("solution"):
                assert "raise NotImplementedError()" in text
                assert not any(line in text.splitlines() for line in solution_lines(mine)), path.name
                assert "source_hidden" not in theirs["metadata"].get("jupyter", {})
            else:   # unchanged, but for the note on where the solutions are
                assert text == "".join(mine["source"]).replace(course.SOLUTIONS_NOTE, course.STUDENT_NOTE)
        notes = ["".join(c["source"]) for c in student if c["cell_type"] == "markdown"]
        assert sum(course.STUDENT_NOTE in t for t in notes) == 1, path.name
        assert not any("folded away" in t for t in notes), path.name


@pytest.mark.slow
def test_the_instructor_version_gets_full_marks_and_the_student_version_none(edition, tmp_path):
    """nbgrader runs the notebook and its graded cells: the solutions pass every check, the stubs none,
    and the student's notebook still runs everything before the first exercise."""
    out, release = edition
    path = EXERCISE_NOTEBOOKS[0]                      # the quickest notebook: each grading runs it
    n_exercises = sum(bool(nbgrader(c).get("solution")) for c in cells(path))
    assert course.autograde(out, path, student="instructor") == (n_exercises, n_exercises)
    assert course.autograde(out, release / path.stem / path.name, student="learner") == (0, n_exercises)
    graded = cells(out / "autograded" / "learner" / path.stem / path.name)
    first = next(i for i, c in enumerate(graded) if nbgrader(c).get("solution"))
    errors = [i for i, c in enumerate(graded)
              if any(o["output_type"] == "error" for o in c.get("outputs", []))]
    assert errors and min(errors) == first
    assert all(nbgrader(graded[i]).get("solution") or nbgrader(graded[i]).get("grade") for i in errors)
    assert all(graded[i]["outputs"][-1]["ename"] == "NotImplementedError"
               for i in errors if nbgrader(graded[i]).get("solution"))


def test_the_build_refuses_a_folder_it_did_not_make(tmp_path):
    pytest.importorskip("nbgrader")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        course.build_student_edition(tmp_path, EXERCISE_NOTEBOOKS[:1])
    assert (tmp_path / "notes.txt").read_text() == "mine"
