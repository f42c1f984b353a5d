"""Every profile runs every notebook, up to its exercises (they are graded in the tiny profile, whose
models their checks describe).

OpenAI's weights (500 MB and more) cannot be had offline, so a small checkpoint that the test makes in
Hugging Face's real `model.safetensors` format stands in for them: GPT-2's vocabulary and context
1024, two layers of width 32 (the output head over the 50,257 tokens is most of its cost, so the
width is kept small). It reaches the notebooks through `SCRATCHGPT_TEST_ONLY_UNVERIFIED_GPT2_WEIGHTS`,
a test-only override that skips the manifest's checksum and says so on every use. The notebooks run
under `gpt2` without output comparison (the stored outputs are the tiny profile's). Under the
stand-in, `gpt2-medium` is the `gpt2` profile but for its name, release and description (the
stand-in sets the model's shape): a test checks that, so the `gpt2` runs cover it without running
every notebook twice.

Under the stand-in the profiles run one pass of each training loop over 24 instruction and preference
examples, and notebook 12 reuses the model notebook 08 fine-tuned from the stand-in (cached beside the
stand-in, never in `data/`) (`profiles.STANDIN_LIMITS`). On a machine without CUDA the `gpu`
profile's clear stop at the first cell is checked instead of a run: in one kernel, for the first
notebook, since every notebook's first two statements are checked to be `import scratchgpt` and
`PROFILE = scratchgpt.profile()`.
"""

import ast
import os

import nbformat
import pytest
import torch
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from scratchgpt.course.profiles import STANDIN_ENV
from scratchgpt.paths import REPO_ROOT

NOTEBOOKS = sorted(p for p in (REPO_ROOT / "notebooks").rglob("*.ipynb")     # the Korean edition's code
                   if ".ipynb_checkpoints" not in p.parts and "ko" not in p.parts)  # is the English one's


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=1024, n_embd=32, n_layer=2, n_head=1)
    folder = tmp_path_factory.mktemp("standin")
    transformers.GPT2LMHeadModel(cfg).save_pretrained(folder, safe_serialization=True)
    return folder / "model.safetensors"


def without_exercises(nb):
    """The notebook up to its exercises. Their checks state what the tiny profile's models show (which
    run wins, a direction) and are graded in that profile (tests/test_exercises.py); under another
    profile, and above all with the stand-in's random weights, those relations need not hold."""
    start = next((i for i, c in enumerate(nb.cells)
                  if c.cell_type == "markdown" and c.source.startswith("## Exercises")), len(nb.cells))
    nb.cells = nb.cells[:start]
    return nb


def execute(path, env: dict[str, str], cwd=None, outputs: list | None = None, exercises: bool = True):
    """Run a notebook top to bottom in its own folder (as nbval and JupyterLab do); nothing is written.
    `exercises=False`: only up to its exercises.

    The executed notebook is returned, or, if a cell fails, appended to `outputs` before the error rises.
    """
    nb = nbformat.read(path, as_version=4)
    if not exercises:
        nb = without_exercises(nb)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)                       # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=1200, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd or path.parent)}}).execute()
    finally:
        if outputs is not None:
            outputs.append(nb)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def chooses_the_profile_first(cell_source: str) -> bool:
    """Whether a cell's first two statements are `import scratchgpt` and `PROFILE = scratchgpt.profile()`."""
    body = ast.parse(cell_source).body
    return (len(body) >= 2 and ast.unparse(body[0]) == "import scratchgpt"
            and ast.unparse(body[1]) == "PROFILE = scratchgpt.profile()")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_chooses_its_profile_before_anything_else(path):
    """With this, one kernel run (below) proves every notebook's stop: nothing runs before `profile()`
    raises, and the error's one sentence is the same wherever it is raised."""
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert chooses_the_profile_first(first.source), f"first code cell of {path.name}: {first.source[:80]!r}"


def test_the_first_cell_check_tells_a_late_profile_apart():
    assert chooses_the_profile_first("import scratchgpt\n\nPROFILE = scratchgpt.profile()\n"
                                     "print(PROFILE.name)")
    assert not chooses_the_profile_first("import scratchgpt\nimport torch\nPROFILE = scratchgpt.profile()")
    assert not chooses_the_profile_first("import scratchgpt\nPROFILE = scratchgpt.profile('tiny')")


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="this machine has CUDA: run the notebooks with SCRATCHGPT_PROFILE=gpu instead")
def test_gpu_profile_without_cuda_stops_at_the_first_cell_with_one_sentence(tmp_path):
    path = NOTEBOOKS[0]   # every notebook starts the same way (checked above): one kernel run stands for all
    nb = nbformat.read(path, as_version=4)
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    nb.cells = nb.cells[: first + 1]
    only_first = tmp_path / path.name
    nbformat.write(nb, only_first)
    ran = []
    with pytest.raises(CellExecutionError):
        execute(only_first, {"SCRATCHGPT_PROFILE": "gpu"}, cwd=path.parent, outputs=ran)
    errors = [o for o in ran[0].cells[first].outputs if o.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "ProfileError"
    assert errors[0].traceback == ["ProfileError: the gpu profile needs a CUDA GPU and this machine "
                                   "has none: choose another profile, e.g. SCRATCHGPT_PROFILE=tiny or gpt2."]


def test_under_the_standin_gpt2_medium_differs_from_gpt2_only_in_name_and_release(standin, monkeypatch):
    import dataclasses

    from scratchgpt.course.profiles import profile
    from scratchgpt.gpt2_weights import gpt2_model

    monkeypatch.setenv(STANDIN_ENV, str(standin))
    small, medium = profile("gpt2"), profile("gpt2-medium")
    assert medium.weights == "355M" and small.weights == "124M"
    assert dataclasses.replace(medium, name="gpt2", weights="124M", description=small.description) == small
    assert gpt2_model(medium.weights, path=medium.weights_file).config == small.model   # the release loads


@pytest.mark.slow
@pytest.mark.parametrize("name", ["gpt2"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_profile(path, name, standin):
    nb = execute(path, {"SCRATCHGPT_PROFILE": name, STANDIN_ENV: str(standin)}, exercises=False)
    first = next(c for c in nb.cells if c.cell_type == "code")
    text = "".join(o.get("text", "") for o in first.outputs)
    assert name in text                                            # it really ran under that profile
    warned = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.get("name") == "stderr")
    assert "TEST-ONLY stand-in weights" in warned and "skips the manifest's checksum" in warned
    assert not (REPO_ROOT / "data" / f"{name}-pretrained.safetensors").exists()   # nothing useless is cached
    assert not (REPO_ROOT / "data" / f"{name}-instruct.safetensors").exists()

