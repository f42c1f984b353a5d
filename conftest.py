"""How the suite shares the machine's cores: two pytest-xdist workers (`-n 2` in pyproject.toml), one
thread each, and which tests must run in the same worker.

On 2 cores, two processes with one thread each finish the suite about a quarter sooner than one with
two threads: the notebooks' small matrix products scale poorly over threads, and much of the suite
(starting kernels and subprocesses, importing, compiling) is serial. `python -m pytest -n 0` runs it in
one process with the machine's default threads instead (tests/numerics_matrix.py checks that the
stored outputs hold either way).

Each file stays in one worker (a notebook's cells share its kernel; a test file's fixtures are made
once). Three files share a worker and run first, in this order: notebook 04, which trains and caches
the tiny profile's pretrained model, notebook 08, which fine-tunes and caches its instruction-tuned
model, and the grading of every exercise, which starts from both. On a fresh clone a notebook that
needs a model before it is cached trains it again (the same bits, a minute lost); going first, these
two are cached before the other worker, busy with the unit tests, reaches the notebooks that load them.
"""

import os
from pathlib import Path

import pytest

# tests/test_exercises.py's grading: after the notebooks that cache the models it starts from
MODELS_GROUP = "trained-models"
MAKE_THE_MODELS = ("04_pretraining.ipynb", "08_instruction_finetuning.ipynb")


def pytest_configure(config):
    """With more than one worker, each runs one thread unless OMP_NUM_THREADS says otherwise: two workers
    of two threads each on 2 cores would oversubscribe them (OpenMP's spinning threads then slow every
    step). The workers and the notebook kernels they start inherit this environment."""
    workers = getattr(config.option, "numprocesses", None) or 0
    if workers not in (0, 1) and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = "1"


def _grading(item) -> bool:
    return item.nodeid.startswith("tests/test_exercises.py") and item.get_closest_marker("slow") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Each item's xdist group: its file, or MODELS_GROUP for the model-making notebooks and the grading,
    which go first (notebooks 04 and 08, then the grading), in a serial run (`-n 0`) as well."""
    models = []
    for item in items:
        name = Path(str(item.path)).name
        in_models = name in MAKE_THE_MODELS or _grading(item)
        group = MODELS_GROUP if in_models else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(name=group))
        if in_models:
            models.append(item)
    models.sort(key=_grading)                             # stable: 04's cells, 08's cells, then the grading
    items[:] = models + [i for i in items if i not in models]
