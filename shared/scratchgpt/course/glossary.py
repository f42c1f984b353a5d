"""The curriculum's terms in English and Korean (`notebooks/glossary.json`), shown by notebook 00.

The Korean edition writes each concept with exactly one Korean term, this file's `ko`; `not` lists
other spellings of it seen in Korean texts, which the tests refuse in the Korean notebooks.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..paths import REPO_ROOT

GLOSSARY_FILE = REPO_ROOT / "notebooks" / "glossary.json"


def load_glossary(path: str | Path = GLOSSARY_FILE) -> list[dict]:
    """The glossary's entries, checked: each an English term, one Korean term, a meaning, and the other
    spellings to avoid; no English or Korean term twice."""
    entries = json.loads(Path(path).read_text(encoding="utf-8"))
    for i, e in enumerate(entries, 1):
        if not isinstance(e, dict) or set(e) != {"en", "ko", "meaning", "not"}:
            raise ValueError(f"glossary entry {i}: needs the keys en, ko, meaning, not")
        if not all(isinstance(e[k], str) and e[k].strip() for k in ("en", "ko", "meaning")) \
                or not isinstance(e["not"], list) or not all(isinstance(v, str) and v for v in e["not"]):
            raise ValueError(f"glossary entry {i} ({e.get('en')!r}): en, ko and meaning are non-empty "
                             "texts and not a list of texts")
    for key in ("en", "ko"):
        seen = [e[key] for e in entries]
        twice = sorted({t for t in seen if seen.count(t) > 1})
        if twice:
            raise ValueError(f"the glossary lists {', '.join(twice)} twice")
    return entries


def glossary_html(entries: list[dict] | None = None) -> str:
    entries = load_glossary() if entries is None else entries
    rows = "".join(f"<tr><td>{html.escape(e['en'])}</td><td>{html.escape(e['ko'])}</td>"
                   f"<td>{html.escape(e['meaning'])}</td></tr>" for e in entries)
    return ("<table><thead><tr><th>English</th><th>한국어</th><th>meaning</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def glossary():
    """Show the glossary as a table (for a notebook cell)."""
    from IPython.display import HTML

    return HTML(glossary_html())
