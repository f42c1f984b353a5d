"""The overview notebook covers the source notes: their sections and every term of their glossary."""

import json

from scratchgpt.paths import REPO_ROOT

OVERVIEW = REPO_ROOT / "notebooks" / "00_overview.ipynb"


def markdown() -> str:
    cells = json.loads(OVERVIEW.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def glossary_rows() -> dict[str, str]:
    """English term -> Korean term, from the glossary table."""
    text = markdown().split("## 7. Glossary")[1]
    rows = [line.split("|")[1:3] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {en.strip(): ko.strip() for en, ko in rows[1:]}


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
