"""Figures that depend on the CPU, printed so that they are still checked.

Another CPU runs other matrix-multiply kernels, which round differently in the last bits; training
amplifies those bits, so a loss or an accuracy after training differs a little from machine to
machine (say 97.0% here, 97.3% there). Such a figure is printed with a `~` in front: `~97.0%`. The test
suite's sanitizer (`tests/sanitize.cfg`) masks the digits after a `~`, and `check` says in words
whether the figure lies in the range the course expects, which is compared exactly: a figure outside
its range fails the tests on any machine, a figure inside it passes on every machine.

    >>> check("test accuracy", 0.970, 0.94, 1.0, ".1%")
    test accuracy ~97.0%, as expected (94.0% to 100.0%)

A range belongs to one profile, the tiny one unless `profile` names another (`None`: every profile).
Under any other profile `check` prints the figure alone: a bigger model has other figures, and the
notebook's cell stays the same at every size.
"""

from __future__ import annotations

import math

from ..progress import approx

__all__ = ["approx", "check", "in_range"]


def in_range(value: float, low: float, high: float) -> bool:
    """Whether `value` lies in [low, high]; a value that is not finite never does."""
    return math.isfinite(value) and low <= value <= high


def check(label: str, value: float, low: float, high: float, spec: str = ".3f",
          profile: str | None = "tiny") -> None:
    """Print `label ~value, as expected (low to high)`, or say plainly that it is outside that range.

    It prints rather than raises, so that a learner's run goes on; the test suite compares the
    printed sentence, so a figure out of its range fails the suite on any machine.
    """
    from .profiles import active_profile_name

    if profile is not None and active_profile_name() != profile:
        print(f"{label} {approx(value, spec)}")
        return
    expected = f"{format(low, spec)} to {format(high, spec)}"
    if in_range(value, low, high):
        print(f"{label} {approx(value, spec)}, as expected ({expected})")
    else:
        print(f"{label} {approx(value, spec)} is OUTSIDE the expected {expected}: "
              "compare your code with the cells above")
