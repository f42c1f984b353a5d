"""How the training loops report: progress bars, and figures that depend on the CPU.

`approx(x)` prints a figure that training makes as `~0.135`: another CPU runs other matrix-multiply
kernels, which round differently in the last bits, and training amplifies those bits. The test suite's
sanitizer (`tests/sanitize.cfg`) masks the digits after a `~`; `scratchgpt.course.check` then checks
such a figure against a stated range.

Progress bars still tell the truth when a saved notebook is opened later.

In a notebook tqdm draws a widget. A saved notebook does not keep the widget, only its text stand-in,
written once when the bar appears (`training: 0%| 0/288 [00:00<?, ?it/s]`), so a finished cell read
later looks as if training never started. `progress_bar` draws the same live widget and, when the bar
closes, rewrites that stand-in to the final count (`[progress] training: 288/288 done`). Outside a
notebook it is tqdm's usual text bar.

(The stand-in starts as `[progress] training: 0/288`; `tests/sanitize.cfg` treats both forms as the
same, because nbval reads the first and ignores the rewrite.)
"""

from __future__ import annotations

import importlib.util

from tqdm.std import tqdm as text_tqdm

__all__ = ["approx", "progress_bar"]


def approx(value: float, spec: str = ".3f") -> str:
    """`value` formatted with `spec` and marked machine-dependent: '~0.183', '~97.0%'.

    A width in `spec` is dropped (the `~` must touch the digits for the sanitizer to find them): pad
    the result instead, `f"{approx(x):>8}"`.
    """
    return "~" + format(value, spec).strip()


def progress_bar(total: int, desc: str, disable: bool = False, mininterval: float = 0.1, **kwargs):
    """A tqdm bar of `total` steps: the notebook widget with a truthful saved text, or a text bar."""
    if disable or not _in_a_notebook():
        return text_tqdm(total=total, desc=desc, disable=disable, mininterval=mininterval, **kwargs)
    return _notebook_bar()(total=total, desc=desc, mininterval=mininterval, **kwargs)


def _in_a_notebook() -> bool:
    """True in a Jupyter kernel that can draw widgets (ipywidgets installed)."""
    if importlib.util.find_spec("IPython") is None or importlib.util.find_spec("ipywidgets") is None:
        return False
    from IPython import get_ipython

    return getattr(get_ipython(), "kernel", None) is not None


def _notebook_bar():
    from IPython.display import display
    from tqdm.notebook import tqdm as notebook_tqdm

    class NotebookBar(notebook_tqdm):
        """tqdm's widget, shown under a display id whose text stand-in is rewritten on close."""

        def __init__(self, *args, **kwargs):
            self._handle = None
            super().__init__(*args, display=False, **kwargs)
            self._handle = display(self._bundle(), raw=True, display_id=True)
            self.displayed = True

        def _bundle(self) -> dict:
            bundle = dict(self.container._repr_mimebundle_())    # the widget view, for a live kernel
            done = " done" if self.total and self.n >= self.total else ""
            bundle["text/plain"] = f"[progress] {self.desc}: {self.n}/{self.total}{done}"
            return bundle

        def close(self):
            if self.disable or getattr(self, "_closed", False):
                return
            super().close()
            self._closed = True
            if self._handle is not None:
                self._handle.update(self._bundle(), raw=True)

    return NotebookBar
