"""The overview notebook covers the source notes: their sections and every term of their glossary."""

import json

import pytest

from scratchgpt.course.glossary import glossary_html, load_glossary
from scratchgpt.paths import REPO_ROOT

OVERVIEW = REPO_ROOT / "notebooks" / "00_overview.ipynb"


def markdown() -> str:
    cells = json.loads(OVERVIEW.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def glossary_rows():
    """The glossary notebook 00 shows: English term -> Korean term (from notebooks/glossary.json)."""
    return {e["en"]: e["ko"] for e in load_glossary()}


def test_notebook_00_shows_the_glossary_file():
    cells = json.loads(OVERVIEW.read_text(encoding="utf-8"))["cells"]
    shown = [c for c in cells if c["cell_type"] == "code" and "glossary()" in "".join(c["source"])]
    assert len(shown) == 1
    assert "".join(shown[0]["outputs"][0]["data"]["text/html"]) == glossary_html()


def test_the_glossary_names_each_concept_once_and_refuses_a_broken_file(tmp_path):
    entries = load_glossary()
    spellings = [e["ko"] for e in entries] + [v for e in entries for v in e["not"]]
    assert len(spellings) == len(set(spellings))             # no spelling is both a term and avoided
    twice = entries + [dict(entries[0], en="another")]
    (tmp_path / "g.json").write_text(json.dumps(twice, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="the glossary lists 대규모 언어 모델 twice"):
        load_glossary(tmp_path / "g.json")
    (tmp_path / "g.json").write_text(json.dumps([{"en": "x", "ko": "", "meaning": "m", "not": []}]))
    with pytest.raises(ValueError, match="glossary entry 1"):
        load_glossary(tmp_path / "g.json")


def test_the_glossary_has_the_notes_terms_and_the_later_notebooks_terms():
    rows = glossary_rows()
    korean = " ".join(rows.values())
    for term in ["대규모 언어 모델", "파라미터", "말뭉치", "레이블", "텍스트 완성", "시퀀스", "창발적 능력",
                 "자기 지도 학습", "사전 훈련", "미세 튜닝", "지시 미세 튜닝", "분류 미세 튜닝",
                 "파운데이션 모델", "베이스 모델", "인코더", "디코더", "셀프 어텐션", "자기회귀"]:
        assert term in korean, term
    english = " ".join(rows)
    for term in ["logit", "softmax", "dropout", "context vector", "query / key / value", "perplexity",
                 "classification head", "LoRA", "corpus", "emergent ability", "self-supervised learning"]:
        assert term in english, term


def test_the_notes_sections_are_covered():
    text = markdown()
    for needle in ["What LLMs are used for",          # 1.2 applications
                   "**emergent** abilities",           # 1.6 translation it was never trained for
                   "pre-training", "fine-tuning", "foundation model",  # 1.3
                   "**encoder**", "**decoder**", "self-attention",     # 1.4
                   "### The training data",            # 1.5 the data sets and their scale
                   "autoregressive", "96 layers"]:     # 1.6
        assert needle in text, needle


def test_the_overview_ends_with_a_summary_that_leads_to_notebook_01():
    cells = json.loads(OVERVIEW.read_text(encoding="utf-8"))["cells"]
    last = "".join(cells[-1]["source"])
    assert cells[-1]["cell_type"] == "markdown" and last.startswith("## What we covered")
    assert "(stage1_data_and_attention/01_text_data.ipynb)" in last
