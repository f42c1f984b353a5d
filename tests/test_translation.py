"""The Korean edition's sync: code and outputs come from the English notebook, translations are kept
while their English text is unchanged, and every difference but translated text is reported."""

import json

import pytest

from scratchgpt.course import translation as tr
from scratchgpt.course.exercises import quiz_html

BANK = {"01_y": [{"question": "Which id has `<|endoftext|>`?", "choices": ["0", "50256"], "answer": 1,
                   "why": "It is the last id.",
                   "ko": {"question": "`<|endoftext|>`의 id는?", "choices": ["0", "50256"],
                          "why": "마지막 id입니다."}}] * 5}


def md(text, **meta):
    return {"cell_type": "markdown", "metadata": meta, "source": text.splitlines(True)}


def code(text, outputs=None, count=1):
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": outputs or [],
            "source": text.splitlines(True)}


def out(text):
    return [{"name": "stdout", "output_type": "stream", "text": [text]}]


def write(path, cells):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def read(path):
    return json.loads(path.read_text())["cells"]


def translate(path, texts):
    """Stand in for a translator: fill each markdown cell the sync left in English."""
    cells = read(path)
    english = iter(texts)
    for cell in cells:
        if cell["cell_type"] == "markdown" and cell["metadata"]["ko"]["source"] is None:
            ko, en = next(english)
            cell["source"] = ko.splitlines(True)
            cell["metadata"]["ko"]["source"] = tr.source_hash(en)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def quiz_output(html):
    data = {"text/html": html.splitlines(True), "text/plain": ["<IPython.core.display.HTML object>"]}
    return [{"data": data, "execution_count": 3, "metadata": {}, "output_type": "execute_result"}]


def lesson(root):
    en = root / "stage1_x" / "01_y.ipynb"
    write(en, [md("# 01 · Tokens\n\nText becomes numbers."),
               code("import scratchgpt\n\nPROFILE = scratchgpt.profile()  # the profile",
                    out("profile: tiny\n")),
               md("The **vocabulary** maps words to ids."),
               code("vocab = {'a': 0}\nprint(len(vocab))", out("1\n"), count=2),
               code('from scratchgpt.course import quiz\n\nquiz("01_y")', quiz_output("<ol>English</ol>"),
                    count=3)])
    return en


def test_a_new_korean_notebook_mirrors_the_english_and_lists_every_text_to_translate(tmp_path):
    en = lesson(tmp_path)
    pending = tr.sync_notebook(en, root=tmp_path, questions=BANK)
    ko = tmp_path / "ko" / "stage1_x" / "01_y.ipynb"
    assert [(p.index, p.reason) for p in pending] == [(0, "new"), (2, "new")]
    cells = read(ko)
    assert cells[1] == read(en)[1] and cells[3] == read(en)[3]          # code and outputs copied
    assert "".join(cells[4]["source"]).endswith('quiz("01_y", lang="ko")')
    assert "".join(cells[4]["outputs"][0]["data"]["text/html"]) == quiz_html("01_y", BANK, lang="ko")
    assert "마지막 id입니다." in quiz_html("01_y", BANK, lang="ko")
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [f"{ko} cell 0: not translated yet",
                                                   f"{ko} cell 2: not translated yet"]


def test_translations_and_translated_comments_survive_a_change_elsewhere(tmp_path):
    en = lesson(tmp_path)
    tr.sync_notebook(en, root=tmp_path, questions=BANK)
    ko = tmp_path / "ko" / "stage1_x" / "01_y.ipynb"
    translate(ko, [("# 01 · 토큰\n\n텍스트는 숫자가 됩니다.", "# 01 · Tokens\n\nText becomes numbers."),
                   ("**어휘 사전**은 단어를 id로 바꿉니다.", "The **vocabulary** maps words to ids.")])
    cells = read(ko)
    cells[1]["source"] = ["import scratchgpt\n", "\n", "PROFILE = scratchgpt.profile()  # 프로필\n"]
    ko.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == []

    # the English notebook gains a cell, and one code cell's output changes
    cells = read(en)
    cells.insert(3, md("Ids start at 0."))
    cells[4]["outputs"] = out("2\n")
    write(en, cells)
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [
        f"{ko}: its cells are not the English notebook's (5 vs 6): "
        "run python -m scratchgpt.course sync-korean"]
    pending = tr.sync_notebook(en, root=tmp_path, questions=BANK)
    assert [(p.index, p.reason) for p in pending] == [(3, "new")]
    synced = read(ko)
    assert "".join(synced[0]["source"]).startswith("# 01 · 토큰")            # translation kept
    assert "# 프로필" in "".join(synced[1]["source"])                          # translated comment kept
    assert synced[4]["outputs"] == out("2\n")                                # new output copied
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [f"{ko} cell 3: not translated yet"]


def test_a_change_on_one_side_only_is_caught(tmp_path):
    en = lesson(tmp_path)
    tr.sync_notebook(en, root=tmp_path, questions=BANK)
    ko = tmp_path / "ko" / "stage1_x" / "01_y.ipynb"
    translate(ko, [("# 01 · 토큰\n\n텍스트는 숫자가 됩니다.", "# 01 · Tokens\n\nText becomes numbers."),
                   ("**어휘 사전**은 단어를 id로 바꿉니다.", "The **vocabulary** maps words to ids.")])
    good = ko.read_text()

    cells = read(ko)                                   # Korean code changed (not a comment)
    cells[3]["source"] = ["vocab = {'a': 1}\n", "print(len(vocab))"]
    ko.write_text(json.dumps({"cells": cells}))
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [
        f"{ko} cell 3: the code differs from the English notebook's"]

    ko.write_text(good)                                # Korean output changed
    cells = read(ko)
    cells[3]["outputs"] = out("7\n")
    ko.write_text(json.dumps({"cells": cells}))
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [
        f"{ko} cell 3: the outputs differ from the English notebook's"]

    ko.write_text(good)                                # English text changed after translation
    cells = read(en)
    cells[2]["source"] = ["The **vocabulary** maps each token to an id."]
    write(en, cells)
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [
        f"{ko} cell 2: the English text changed since it was translated"]
    pending = tr.sync_notebook(en, root=tmp_path, questions=BANK)
    assert [(p.index, p.reason) for p in pending] == [(2, "stale")]

    ko.write_text(good)                                # a "translation" left in English
    cells = read(ko)
    cells[2]["source"] = read(en)[2]["source"]
    cells[2]["metadata"]["ko"]["source"] = tr.source_hash("".join(read(en)[2]["source"]))
    ko.write_text(json.dumps({"cells": cells}))
    assert tr.check_notebook(en, root=tmp_path, questions=BANK) == [f"{ko} cell 2: holds no Korean"]


def test_code_is_compared_without_its_comments_but_token_for_token():
    same = tr.code_without_comments
    assert same("x = 1  # one\nfor i in range(3):\n    # loop\n    print(i)\n") == \
        same("x = 1  # 하나\nfor i in range(3):\n    # 반복\n    print(i)\n")
    assert same("s = 'a # b'") != same("s = 'a # c'")                   # a string is code, not a comment
    assert same("x = 1\n") != same("x = 2\n") and same("%time f()\n") != same("%time g()\n")


# ---- the Korean edition in the repository ------------------------------------------------------------
KOREAN_NOTEBOOKS = sorted(tr.KOREAN.rglob("*.ipynb")) if tr.KOREAN.exists() else []
ENGLISH_OF = {tr.korean_path(p): p for p in tr.english_notebooks()}


@pytest.mark.parametrize("korean", KOREAN_NOTEBOOKS, ids=lambda p: p.name)
def test_the_korean_notebook_is_the_english_one_translated(korean):
    """Same cells, code token for token (comments aside), same outputs, every markdown cell translated
    from the English notebook's current text (its recorded hash is fresh). nbval runs only the English."""
    assert korean in ENGLISH_OF, f"{korean.name} has no English notebook"
    assert tr.check_notebook(ENGLISH_OF[korean]) == []


@pytest.mark.parametrize("korean", KOREAN_NOTEBOOKS, ids=lambda p: p.name)
def test_the_korean_notebook_writes_each_concept_one_way(korean):
    from scratchgpt.course.glossary import load_glossary

    text = "\n".join("".join(c["source"]) for c in read(korean) if c["cell_type"] == "markdown")
    for entry in load_glossary():
        for other in entry["not"]:
            assert other not in text, f"{korean.name} writes {other!r}: the glossary says {entry['ko']!r}"


def test_the_quiz_speaks_korean_where_the_bank_has_korean_text():
    from scratchgpt.course.exercises import QuestionError

    page = quiz_html("01_y", BANK, lang="ko")
    assert page.count("<details><summary>정답</summary><p><b>B. 50256</b>: 마지막 id입니다.") == 5
    assert "<code>&lt;|endoftext|&gt;</code>의 id는?" in page and "Which id" not in page
    english_only = {"01_y": [{k: v for k, v in q.items() if k != "ko"} for q in BANK["01_y"]]}
    with pytest.raises(QuestionError, match="01_y, question 1: has no Korean text"):
        quiz_html("01_y", english_only, lang="ko")
    short = {"01_y": [dict(q, ko=dict(q["ko"], choices=["0"])) for q in BANK["01_y"]]}
    with pytest.raises(QuestionError, match="ko: needs 2 different choices"):
        quiz_html("01_y", short, lang="ko")
    with pytest.raises(ValueError, match="lang must be one of en, ko"):
        quiz_html("01_y", BANK, lang="fr")


@pytest.mark.slow
def test_the_korean_student_edition_is_the_english_one_in_korean(tmp_path):
    """Built from notebooks/ko/: the same stubs and the same checks (hidden tests removed) as the English
    edition, the Korean note on what the stubs are, and the Korean text around them."""
    pytest.importorskip("nbgrader")
    import re

    from scratchgpt.course import exercises

    korean = exercises.exercise_notebooks("ko")
    if not korean:
        pytest.skip("no Korean notebook with exercises yet")
    release = exercises.build_student_edition(tmp_path / "course", lang="ko")
    hidden = re.compile(r"### BEGIN HIDDEN TESTS\n.*?### END HIDDEN TESTS\n?", re.S)
    for path in korean:
        student = read(release / path.stem / path.name)
        english = read(ENGLISH_OF[path])
        assert len(student) == len(english)
        notes = ["".join(c["source"]) for c in student if c["cell_type"] == "markdown"]
        assert sum(exercises.KO_STUDENT_NOTE in n for n in notes) == 1, path.name
        for mine, theirs in zip(english, student):
            grading = mine["metadata"].get("nbgrader", {})
            text = "".join(theirs["source"])
            if grading.get("solution"):
                assert "raise NotImplementedError()" in text and "### BEGIN SOLUTION" not in text
            elif grading.get("grade"):
                assert text.strip() == hidden.sub("", "".join(mine["source"])).strip()


def test_every_question_of_the_bank_has_its_korean_text():
    from scratchgpt.course.exercises import load_questions

    bank = load_questions()
    missing = [f"{name} question {i}" for name, items in bank.items() for i, q in enumerate(items, 1)
               if "ko" not in q]
    assert not missing, f"no Korean text: {', '.join(missing)}"
    assert all("<summary>정답</summary>" in quiz_html(name, bank, lang="ko") for name in bank)
