"""What the prose says is what the cells print.

Every figure a markdown cell quotes as a result (a percentage, a decimal number, an "N times" or
"Nx" ratio) must appear in an output of the same notebook. Exempt are figures that the prose marks
as approximate and machine-dependent (written `~97%`, or after "about", "around", "roughly",
"approximately"), figures in code spans or formulas (`r = 8`, inputs rather than results), and
published figures cited with their source in the same sentence ("(Hu et al. 2021)", "reported").
"""

import json
import re

import pytest

from scratchgpt.paths import REPO_ROOT

NOTEBOOKS = sorted(p for p in (REPO_ROOT / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)

NUMBER = r"\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(
    rf"(?<![\w.$/-])(~?)({NUMBER}%|\d[\d,]*\.\d+(?!\.?\d)(?:\s?(?:x|×)(?!\s*\d)|\s?times\b)?|"
    rf"{NUMBER}\s?(?:x|×)(?![\w])(?!\s*\d)|{NUMBER} times\b)")
APPROX_WORDS = re.compile(r"(about|around|roughly|approximately|some|nearly|almost|under|over|up to|at least|"
                          r"at most|below|above|within|≈|약|대략|거의|최대|최소)\s*$", re.IGNORECASE)
CITED = re.compile(r"\(([A-Z][\w-]+ et al\.?,? \d{4}|reported[^)]*|published[^)]*|source[^)]*)\)|"
                   r"\breported\b|\bpublished\b|\bthe paper\b|\baccording to\b|보고|논문|출처|에 따르면",
                   re.IGNORECASE)


def prose_figures(markdown: str):
    """(figure, sentence) for every result-like figure of a markdown cell that is not exempt."""
    text = re.sub(r"`[^`]*`", " ", markdown)                    # code spans: inputs, names, formulas
    text = text.replace("\\$", "USD ")                          # an escaped dollar sign is money, not LaTeX
    text = re.sub(r"\$[^$]*\$", " ", text)                      # LaTeX
    text = re.sub(r"\]\([^)]*\)", "]", text)                    # link targets
    text = re.sub(r"^#+ .*$", " ", text, flags=re.MULTILINE)    # headings ("## 2. Fine-tuning")
    text = text.replace("et al.", "et al")
    # an exercise's or a book section's number names it; it is not a result
    text = re.sub(r"\b(Exercises?|book|section|chapter)\s+\d+\.\d+|(연습 문제|책)\s*\d+\.\d+", " ", text)
    for sentence in re.split(r"(?<=[.!?:;])\s+|\n\s*\n|\n[-*] ", text):
        if CITED.search(sentence):
            continue
        for m in FIGURE.finditer(sentence):
            if m.group(1) or APPROX_WORDS.search(sentence[: m.start()]):
                continue
            yield m.group(2), " ".join(sentence.split())


def number_of(figure: str) -> str:
    return re.match(r"\d[\d,]*(?:\.\d+)?", figure).group().replace(",", "")


def outputs_of(cells) -> str:
    parts = []
    for c in cells:
        for out in c.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
            parts.append("".join(out.get("data", {}).get("text/markdown", "")))
    return "\n".join(parts).replace(",", "")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_quoted_figure_is_printed(path):
    cells = json.loads(path.read_text())["cells"]
    printed = outputs_of(cells)
    missing = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        for figure, sentence in prose_figures("".join(cell["source"])):
            number = number_of(figure)
            # the number must stand on its own in an output: 97.0 is not found inside 197.05
            if not re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", printed):
                missing.append(f"{figure!r} in: {sentence[:140]}")
    assert not missing, "figures the prose quotes but no cell prints:\n  " + "\n  ".join(missing)


def test_the_checker_finds_and_exempts_what_it_should():
    found = [f for f, _ in prose_figures(
        "Test accuracy reached 97.0%, 3.5x faster. About 25% of it. The loss fell to ~4.50. "
        "Use `lr = 0.001`. LoRA (Hu et al. 2021) saves 99% of it. It took 2 times as long.")]
    assert found == ["97.0%", "3.5x", "2 times"]
