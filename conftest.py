"""How the suite shares the machine's cores: two pytest-xdist workers (`-n 2` in pyproject.toml), one
thread each, each file in one worker (`--dist loadfile`: a notebook's cells share its kernel, a test
file's fixtures are made once), the files in the order set here (`--no-loadscope-reorder`).

On 2 cores, two processes with one thread each finish the suite sooner than one with two threads: the
notebooks' small matrix products scale poorly over threads, and much of the suite (starting kernels
and subprocesses, importing, compiling) is serial (PERFORMANCE.md has the figures). `python -m pytest
-n 0` runs it in one process with the machine's default threads instead (tests/numerics_matrix.py
checks that the stored outputs hold either way).

The order: notebook 04 first, which trains and caches the tiny profile's pretrained model; the unit
tests; notebook 08, which fine-tunes that model and caches the instruction-tuned one; the other
notebooks, which load them (12 comes last, long after 08 is done); the grading of every exercise
(tests/test_exercises.py), which starts from both. On a fresh clone a notebook that asks for a model
before it is cached makes it again and prints so, and its stored outputs no longer match; in this
order both are cached before anything else asks for them.
"""

import os
from pathlib import Path

MAKE_THE_MODELS = ("04_pretraining.ipynb", "08_instruction_finetuning.ipynb")
GRADING = "test_exercises.py"


def pytest_configure(config):
    """With more than one worker, each runs one thread unless OMP_NUM_THREADS says otherwise: two workers
    of two threads each on 2 cores would oversubscribe them (OpenMP's spinning threads then slow every
    step). The workers and the notebook kernels they start inherit this environment."""
    workers = getattr(config.option, "numprocesses", None) or 0
    if workers not in (0, 1) and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(config, items):
    """Notebook 04, the unit tests, notebook 08, the other notebooks, the grading: in a serial run (`-n 0`)
    too. Within each file, pytest's order."""
    def rank(item):
        name = Path(str(item.path)).name
        if name == MAKE_THE_MODELS[0]:
            return 0
        if name == GRADING:
            return 4
        if item.nodeid.startswith("tests/"):
            return 1
        return 2 if name == MAKE_THE_MODELS[1] else 3
    items.sort(key=rank)                                       # stable
