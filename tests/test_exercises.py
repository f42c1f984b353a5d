"""Course material: the questions file, the exercises in notebooks 01-09, and nbgrader's student edition."""

import copy
import json
import re
import shutil

import pytest

from scratchgpt.course import exercises as course

EXERCISE_NOTEBOOKS = sorted(course.NOTEBOOKS.glob("stage[123]_*/*.ipynb"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def nbgrader(cell):
    return cell["metadata"].get("nbgrader", {})


def test_every_notebook_has_a_valid_question_set_and_shows_it():
    questions = course.load_questions()
    assert len(EXERCISE_NOTEBOOKS) == 9
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
        course.build_student_edition(instructor, EXERCISE_NOTEBOOKS[:1])
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
        course.build_student_edition(out, [REPO_ROOT / notebook] if notebook else EXERCISE_NOTEBOOKS[:1])
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
        course.build_student_edition(tmp_path / "deep" / "out", EXERCISE_NOTEBOOKS[:1])
    assert listing(tmp_path) == []                   # not even the parent folder it made


def test_its_own_output_is_rebuilt_but_not_once_grades_were_added(tmp_path, fake_nbgrader):
    out = tmp_path / "out"
    release = course.build_student_edition(out, EXERCISE_NOTEBOOKS[:1])
    first = listing(out)
    assert course.MARKER in first and (release / EXERCISE_NOTEBOOKS[0].stem).is_dir()
    assert course.build_student_edition(out, EXERCISE_NOTEBOOKS[1:2]) == release      # its own: replaced
    assert (release / EXERCISE_NOTEBOOKS[1].stem).is_dir()
    assert not (release / EXERCISE_NOTEBOOKS[0].stem).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]                           # no temporary left
    (out / "gradebook.db").write_text("grades of a class")                           # autograde was run
    with pytest.raises(FileExistsError, match="files were added or changed since"):
        course.build_student_edition(out, EXERCISE_NOTEBOOKS[:1])
    assert (out / "gradebook.db").read_text() == "grades of a class"


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path, fake_nbgrader, capsys):
    from scratchgpt.course.__main__ import main

    (tmp_path / "C").mkdir()
    (tmp_path / "C" / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(SystemExit) as exit_:
        main(["student-edition", str(tmp_path / "C"), str(EXERCISE_NOTEBOOKS[0])])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "student-edition: error: " in err and "not a student edition" in err and "Traceback" not in err


@pytest.mark.slow
def test_the_real_build_marks_its_folder_as_its_own(edition):
    out, _ = edition
    assert course._holds_only_its_own_output(out) or (out / "submitted").exists()   # autograde may run first
    assert json.loads((out / course.MARKER).read_text())["files"]["nbgrader_config.py"]
