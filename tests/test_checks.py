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


def test_check_says_in_words_whether_the_figure_is_in_its_range(capsys, monkeypatch):
    monkeypatch.setenv("SCRATCHGPT_PROFILE", "tiny")
    monkeypatch.setattr("scratchgpt.course.profiles._chosen", None)
    check("test accuracy", 0.97, 0.94, 1.0, ".1%")
    check("loss", float("nan"), 0.0, 10.0)
    check("val acc", 0.5, 0.9, 1.0, ".1%")
    check("gpt2's loss", 3.2, 0.0, 1.0, profile="gpt2")         # a range for another profile: no verdict
    check("any profile", 3.2, 0.0, 1.0, profile=None)
    assert capsys.readouterr().out.splitlines() == [
        "test accuracy ~97.0%, as expected (94.0% to 100.0%)",
        "loss ~nan is OUTSIDE the expected 0.000 to 10.000: compare your code with the cells above",
        "val acc ~50.0% is OUTSIDE the expected 90.0% to 100.0%: compare your code with the cells above",
        "gpt2's loss ~3.200",
        "any profile ~3.200 is OUTSIDE the expected 0.000 to 1.000: compare your code with the cells above"]


def test_a_range_for_the_tiny_profile_is_not_applied_to_another(capsys, monkeypatch):
    from scratchgpt.course import profile

    monkeypatch.setenv("SCRATCHGPT_PROFILE", "tiny")
    profile("gpt2")                                   # the notebook chose another profile
    try:
        check("final loss", 3.2, 0.0, 1.0)
        assert capsys.readouterr().out.strip() == "final loss ~3.200"
    finally:
        profile("tiny")
    assert in_range(1.0, 0.0, 1.0) and not in_range(float("inf"), 0.0, float("inf"))


def test_the_sanitizer_masks_the_figure_and_keeps_the_verdict():
    here = ("epoch 1: train loss ~0.127, acc ~95.0% | val loss ~-0.183 ~51,003 ~1.6e+12, "
            "as expected (94.0% to 100.0%)")
    there = ("epoch 1: train loss ~0.131, acc ~96.2% | val loss ~-0.190 ~50,998 ~1.7e+12, "
             "as expected (94.0% to 100.0%)")
    assert sanitize(here) == sanitize(there)
    assert sanitize(here) == ("epoch 1: train loss ~N, acc ~N | val loss ~N ~N ~N, "
                              "as expected (94.0% to 100.0%)")
    assert sanitize(here) != sanitize(here.replace(", as expected (", " is OUTSIDE the expected ("))
    assert sanitize("accuracy 95.0%") == "accuracy 95.0%"            # figures without ~ stay compared
    assert approx(0.1234) == "~0.123" and approx(0.5, ".0%") == "~50%" \
        and approx(-3.14159, "8.2f") == "~-3.14"
