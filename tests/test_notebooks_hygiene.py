"""Every committed notebook carries the outputs of one clean top-to-bottom run.

nbval compares stored outputs, so a notebook with unexecuted cells would pass silently against
nothing, and one with stored errors would be teaching a crash.
"""

import json
import re

import pytest

from scratchgpt.paths import REPO_ROOT

NOTEBOOKS = sorted(p for p in (REPO_ROOT / "notebooks").rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
MACHINE_PATH = re.compile(r"(/tmp/|/root/|/home/|/work/|site-packages|/usr/lib/python)")


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_notebook_is_one_clean_run(path):
    cells = [c for c in json.loads(path.read_text())["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"execution counts {counts}: re-run top to bottom"
    for i, c in enumerate(cells):
        for out in c.get("outputs", []):
            assert out["output_type"] != "error", f"code cell {i} stores an error"
            text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
            assert not MACHINE_PATH.search(text), f"code cell {i} shows a machine path"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_notebook_starts_with_a_parameters_cell(path):
    code = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "first code cell must be tagged parameters"


def figures(cells) -> int:
    """Pictures stored in a notebook's outputs (each PNG a figure drawn by a cell)."""
    return sum("image/png" in out.get("data", {}) for c in cells for out in c.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_notebook_is_a_lesson_of_readable_size_with_pictures_and_no_test_harness(path):
    """At most 70 cells; at least 4 figures; nbval's directives as cell tags, not comments in the code;
    no `PROFILE.name == ...` test in a cell (a check's range is chosen by profile inside `check`)."""
    cells = json.loads(path.read_text())["cells"]
    assert len(cells) <= 70, f"{len(cells)} cells: split the notebook"
    assert figures(cells) >= 4, f"{figures(cells)} figures: at least 4 per notebook"
    for i, c in enumerate(cells):
        source = "".join(c["source"])
        if c["cell_type"] == "code":
            assert "NBVAL" not in source, f"cell {i}: an nbval directive belongs in the cell's tags"
            assert not re.search(r"PROFILE\.name\s*[!=]=", source), f"cell {i} tests the profile's name"


def test_the_curriculum_holds_at_least_60_figures():
    english = [p for p in NOTEBOOKS if "ko" not in p.relative_to(REPO_ROOT / "notebooks").parts]
    total = sum(figures(json.loads(p.read_text())["cells"]) for p in english)
    assert total >= 60, f"{total} figures in all"
