"""The machine-dependent figures' printing, and the sanitizer rule that masks them for nbval."""

import re

from scratchgpt.course.checks import approx, check, in_range
from scratchgpt.paths import REPO_ROOT


def sanitize(text: str) -> str:
    """Apply tests/sanitize.cfg as nbval does: each `regex:` line, then its `replace:` line."""
    lines = (REPO_ROOT / "tests" / "sanitize.cfg").read_text().splitlines()
    for regex, replace in zip(lines, lines[1:]):
        if regex.startswith("regex: ") and replace.startswith("replace: "):
            text = re.sub(regex[len("regex: "):], replace[len("replace: "):], text)
    return text


def test_check_prints_the_range_and_the_verdict(capsys):
    check("test accuracy", 0.97, 0.94, 1.0, ".1%")
    check("loss", float("nan"), 0.0, 10.0)
    check("val acc", 0.5, 0.9, 1.0, ".1%")
    assert capsys.readouterr().out.splitlines() == [
        "test accuracy ~97.0% (expected 94.0% to 100.0%): OK",
        "loss ~nan (expected 0.000 to 10.000): OUT OF RANGE",
        "val acc ~50.0% (expected 90.0% to 100.0%): OUT OF RANGE"]
    assert in_range(1.0, 0.0, 1.0) and not in_range(float("inf"), 0.0, float("inf"))


def test_the_sanitizer_masks_the_figure_and_keeps_the_verdict():
    here = ("epoch 1: train loss ~0.127, acc ~95.0% | val loss ~-0.183 ~51,003 ~1.6e+12 "
            "(expected 94.0% to 100.0%): OK")
    there = ("epoch 1: train loss ~0.131, acc ~96.2% | val loss ~-0.190 ~50,998 ~1.7e+12 "
             "(expected 94.0% to 100.0%): OK")
    assert sanitize(here) == sanitize(there)
    assert sanitize(here).startswith("epoch 1: train loss ~N, acc ~N | val loss ~N ~N ~N "
                                     "(expected 94.0% to 100.0%)")
    assert sanitize(here) != sanitize(here.replace(": OK", ": OUT OF RANGE"))
    assert sanitize("accuracy 95.0%") == "accuracy 95.0%"            # figures without ~ stay compared
    assert approx(0.1234) == "~0.123" and approx(0.5, ".0%") == "~50%" \
        and approx(-3.14159, "8.2f") == "~-3.14"
