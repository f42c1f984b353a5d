"""Figures that depend on the CPU, printed so that they are still checked.

Another CPU runs other matrix-multiply kernels, which round differently in the last bits; training
amplifies those bits, so a loss or an accuracy after training differs a little from machine to
machine (say 97.0% here, 97.3% there). Such a figure is printed with a `~` in front: `~97.0%`. The test
suite's sanitizer (`tests/sanitize.cfg`) masks the digits after a `~`, and `check` prints beside the
figure the range it must lie in, which is compared exactly: a figure outside its range fails the
tests on any machine, a figure inside it passes on every machine.

    >>> check("test accuracy", 0.970, 0.94, 1.0, ".1%")
    test accuracy ~97.0% (expected 94.0% to 100.0%): OK
"""

from __future__ import annotations

import math

from ..progress import approx

__all__ = ["approx", "check", "in_range"]


def in_range(value: float, low: float, high: float) -> bool:
    """Whether `value` lies in [low, high]; a value that is not finite never does."""
    return math.isfinite(value) and low <= value <= high


def check(label: str, value: float, low: float, high: float, spec: str = ".3f") -> None:
    """Print `label ~value (expected low to high): OK`, or `OUT OF RANGE` instead of OK.

    It prints rather than raises, so that a learner's run goes on; the test suite compares the
    printed verdict, so a figure out of its range fails the suite on any machine.
    """
    verdict = "OK" if in_range(value, low, high) else "OUT OF RANGE"
    print(f"{label} {approx(value, spec)} (expected {format(low, spec)} to {format(high, spec)}): {verdict}")
