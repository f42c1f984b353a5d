"""The Korean edition: `notebooks/ko/` mirrors `notebooks/`, and can never drift from it.

The English notebooks are the source of truth. A Korean notebook holds the English notebook's cells in
the same order: its code cells are the English code token for token (only comments may be translated)
with the English outputs, and each markdown cell is a translation that records which English text it
translates (`metadata["ko"]["source"]`, a hash of that text). The quiz cell is the one code cell that
differs: it asks for the Korean questions (`quiz(name, lang="ko")`) and stores their rendering, which
the sync writes from the question bank (`notebooks/questions.json`, each question's `"ko"`).

`python -m scratchgpt.course sync-korean` brings every Korean notebook up to date: it copies code and
outputs from the English notebooks, keeps the translations whose English text is unchanged, and lists
every markdown cell that needs translating: new ones (`metadata["ko"]["source"]` is null and the cell
holds the English text) and stale ones (the English text changed since it was translated).
`check_notebook` is what the test suite asks: the two notebooks are equal but for the translated text.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from ..paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
KOREAN = NOTEBOOKS / "ko"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
QUIZ_CALL = re.compile(r'quiz\((["\'][^"\']+["\'])\)')


def english_notebooks(root: Path = NOTEBOOKS) -> list[Path]:
    korean = root / "ko"
    return sorted(p for p in root.rglob("*.ipynb")
                  if korean not in p.parents and ".ipynb_checkpoints" not in p.parts)


def korean_path(english: Path, root: Path = NOTEBOOKS) -> Path:
    """notebooks/stage1_x/01_y.ipynb -> notebooks/ko/stage1_x/01_y.ipynb"""
    return root / "ko" / Path(english).resolve().relative_to(root.resolve())


def source_hash(text: str) -> str:
    """What a translation records of the English text it translates."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def code_without_comments(source: str) -> list[tuple[int, str]]:
    """The code's tokens with comments and blank lines left out: what must be equal token for token.
    IPython's `%magic` and `!shell` lines are compared whole (they are not Python)."""
    lines = [f"__magic__({line.strip()!r})" if line.lstrip().startswith(("%", "!")) else line
             for line in source.splitlines()]
    try:
        tokens = tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline)
        return [(t.type, t.string) for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL)]
    except (tokenize.TokenError, SyntaxError):
        return [(0, line.rstrip()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def korean_quiz(source: str) -> str:
    """The English quiz cell's code as the Korean notebook runs it."""
    return QUIZ_CALL.sub(r'quiz(\1, lang="ko")', source)


def korean_quiz_outputs(english_cell: dict, questions: dict | None = None) -> list | None:
    """The English quiz cell's outputs with the Korean questions' rendering in place of the English one;
    None while the bank has no Korean text for that notebook."""
    from .exercises import QuestionError, quiz_html

    name = QUIZ_CALL.search(_text(english_cell)).group(1).strip("\"'")
    try:
        rendered = quiz_html(name, questions, lang="ko")
    except (KeyError, QuestionError):
        return None
    outputs = copy.deepcopy(english_cell.get("outputs", []))
    for out in outputs:
        if "text/html" in out.get("data", {}):
            out["data"]["text/html"] = rendered.splitlines(True)
    return outputs


def _text(cell: dict) -> str:
    return "".join(cell["source"])


def _key(cell: dict, korean: bool) -> tuple:
    """What pairs a Korean cell with an English one: the code without comments, or the English text's hash."""
    if cell["cell_type"] == "code":
        source = _text(cell)
        if korean:
            source = source.replace(', lang="ko")', ")")
        return ("code", tuple(code_without_comments(source)))
    if korean:
        return ("markdown", (cell["metadata"].get("ko") or {}).get("source"))
    return ("markdown", source_hash(_text(cell)))


def _lines(text: str) -> list[str]:
    return text.splitlines(True)


@dataclass
class Pending:
    """A markdown cell of a Korean notebook that needs translating."""
    notebook: Path
    index: int
    reason: str          # "new": holds the English text; "stale": the English text changed since

    def __str__(self) -> str:
        return f"{_shown(self.notebook)} cell {self.index}: {self.reason}"


def _shown(path: Path) -> str:
    """A path as the learner's messages show it: relative to the repository when it lies in it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def sync_notebook(english: Path, write: bool = True, root: Path = NOTEBOOKS,
                  questions: dict | None = None) -> list[Pending]:
    """Bring the Korean notebook of `english` up to date; return the markdown cells to translate."""
    en = json.loads(Path(english).read_text(encoding="utf-8"))
    ko_path = korean_path(english, root)
    ko = json.loads(ko_path.read_text(encoding="utf-8")) if ko_path.exists() else {"cells": []}
    en_cells, ko_cells = en["cells"], ko["cells"]
    matcher = difflib.SequenceMatcher(None, [_key(c, False) for c in en_cells],
                                      [_key(c, True) for c in ko_cells], autojunk=False)
    cells, pending = [], []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        for offset, i in enumerate(range(i1, i2)):
            source = en_cells[i]
            # the Korean cell this one replaces, if the block pairs them one to one in order
            old = ko_cells[j1 + offset] if op in ("equal", "replace") and j1 + offset < j2 else None
            if old is not None and old["cell_type"] != source["cell_type"]:
                old = None
            cell = copy.deepcopy(source)
            if source["cell_type"] == "code":
                if old is not None and _key(old, True) == _key(source, False):
                    cell["source"] = old["source"]                   # translated comments kept
                elif "quiz(" in _text(source):
                    cell["source"] = _lines(korean_quiz(_text(source)))
                if QUIZ_CALL.search(_text(source)):
                    outputs = korean_quiz_outputs(source, questions)
                    if outputs is None:
                        pending.append(Pending(ko_path, len(cells), "quiz (no Korean questions yet)"))
                    else:
                        cell["outputs"] = outputs
            elif source["cell_type"] == "markdown":
                meta = cell["metadata"]
                if old is not None:
                    cell["source"] = old["source"]
                    meta["ko"] = dict(old["metadata"].get("ko") or {"source": None})
                else:
                    meta["ko"] = {"source": None}
                if meta["ko"].get("source") is None:
                    pending.append(Pending(ko_path, len(cells), "new"))
                elif meta["ko"]["source"] != source_hash(_text(source)):
                    pending.append(Pending(ko_path, len(cells), "stale"))
            cells.append(cell)
    if write:
        out = dict(en, cells=cells)
        ko_path.parent.mkdir(parents=True, exist_ok=True)
        ko_path.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return pending


def check_notebook(english: Path, root: Path = NOTEBOOKS, questions: dict | None = None) -> list[str]:
    """Every way the Korean notebook of `english` differs from it but for translation (empty: none)."""
    ko_path = korean_path(english, root)
    where = _shown(ko_path)
    if not ko_path.exists():
        return [f"{where} is missing: run python -m scratchgpt.course sync-korean"]
    en_cells = json.loads(Path(english).read_text(encoding="utf-8"))["cells"]
    ko_cells = json.loads(ko_path.read_text(encoding="utf-8"))["cells"]
    if [c["cell_type"] for c in en_cells] != [c["cell_type"] for c in ko_cells]:
        return [f"{where}: its cells are not the English notebook's ({len(ko_cells)} vs {len(en_cells)}): "
                "run python -m scratchgpt.course sync-korean"]
    problems = []
    for i, (en, ko) in enumerate(zip(en_cells, ko_cells)):
        if en["cell_type"] == "code":
            en_code = _text(en)
            expected = korean_quiz(en_code) if "quiz(" in en_code else en_code
            if code_without_comments(_text(ko)) != code_without_comments(expected):
                problems.append(f"{where} cell {i}: the code differs from the English notebook's")
            expected_outputs = korean_quiz_outputs(en, questions) if QUIZ_CALL.search(en_code) \
                else en.get("outputs")
            if expected_outputs is None:
                problems.append(f"{where} cell {i}: the question bank has no Korean text for this quiz")
            elif ko.get("outputs") != expected_outputs \
                    or ko.get("execution_count") != en.get("execution_count"):
                problems.append(f"{where} cell {i}: the outputs differ from the English notebook's")
        elif en["cell_type"] == "markdown":
            recorded = (ko["metadata"].get("ko") or {}).get("source")
            if recorded is None:
                problems.append(f"{where} cell {i}: not translated yet")
            elif recorded != source_hash(_text(en)):
                problems.append(f"{where} cell {i}: the English text changed since it was translated")
            elif HANGUL.search(_text(en)) is None and re.search(r"[A-Za-z]{3}", _text(en)) \
                    and HANGUL.search(_text(ko)) is None:
                problems.append(f"{where} cell {i}: holds no Korean")
    return problems


def sync_all(write: bool = True, root: Path = NOTEBOOKS) -> list[Pending]:
    """Sync every Korean notebook; the markdown cells still to translate, in reading order."""
    return [p for nb in english_notebooks(root) for p in sync_notebook(nb, write, root)]
