"""The course's cached models, `pretrained(profile)` and `instruction_tuned(profile)`: each trains once,
caches, and reuses the cache only when it was made the same way."""

import dataclasses

import pytest
import torch

import scratchgpt.course.models as pt
from scratchgpt import GPTConfig, profile

SMALL = dataclasses.replace(
    profile("tiny"), name="unit-test", model=GPTConfig(context_length=64, n_embd=16, n_layer=1, n_head=2),
    batch_size=8, epochs=1, eval_every=1000, train_ratio=0.3)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(pt, "DATA_DIR", tmp_path)
    return tmp_path


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_trains_deterministically_then_reuses_the_cache(cache_dir):
    first = pt.pretrained(SMALL)
    assert (cache_dir / "unit-test-pretrained.safetensors").exists()
    again, _ = pt.pretrain(SMALL, log=lambda *a: None, progress=False)
    assert same_weights(first, again)                       # training is reproducible
    assert same_weights(first, pt.pretrained(SMALL))        # and the cache gives the same model
    assert not pt.pretrained(SMALL).training


def test_cache_from_other_settings_is_not_reused(cache_dir, capsys):
    pt.pretrained(SMALL)
    other = dataclasses.replace(SMALL, learning_rate=SMALL.learning_rate / 2)
    retrained = pt.pretrained(other)
    assert "trained with other settings" in capsys.readouterr().out
    expected, _ = pt.pretrain(other, log=lambda *a: None, progress=False)
    assert same_weights(retrained, expected)


def test_damaged_cache_is_rebuilt(cache_dir, capsys):
    (cache_dir / "unit-test-pretrained.safetensors").write_bytes(b"garbage")
    model = pt.pretrained(SMALL)
    assert "ignoring the cached model" in capsys.readouterr().out
    assert same_weights(model, pt.pretrained(SMALL))


def test_the_recipe_holds_every_setting_that_changes_the_weights(cache_dir):
    """A cache made with another batch, accumulation, window, precision, ... must not be reused; one
    made with another evaluation interval may be (evaluations do not change the weights, see
    tests/test_training.py), and is."""
    changes_weights = dict(batch_size=4, grad_accum=2, pretrain_context=32, amp_dtype="bfloat16", epochs=2,
                           learning_rate=1e-4, weight_decay=0.0, train_ratio=0.4,
                           pretrain_text="tinyshakespeare.txt")
    for field, value in changes_weights.items():
        assert pt._recipe(dataclasses.replace(SMALL, **{field: value})) != pt._recipe(SMALL), field
    first = pt.pretrained(SMALL)
    other_eval = dataclasses.replace(SMALL, eval_every=3, classify_lr=1.0)
    assert pt._recipe(other_eval) == pt._recipe(SMALL)
    retrained, _ = pt.pretrain(other_eval, log=lambda *a: None, progress=False)
    assert same_weights(first, retrained)                   # so reusing the cache is right


def test_a_profile_with_gpt2_weights_caches_nothing(cache_dir):
    big = dataclasses.replace(SMALL, name="unit-test-gpt2", weights="124M")
    assert pt.cache_pretrained(big, pt.GPT(SMALL.model)) is None
    assert not list(cache_dir.iterdir())


def test_instruction_tuned_model_is_cached_and_refused_when_stale(cache_dir, monkeypatch, capsys):
    """Notebook 12 starts from notebook 08's fine-tuned model: the cache gives the same weights as
    fine-tuning again, and a cache made with another learning rate is not reused."""
    some = pt.load_instructions()[:120]                                 # the real file, cut to keep it quick
    monkeypatch.setattr(pt, "load_instructions", lambda: some)
    few = dataclasses.replace(SMALL, instruct_epochs=1, instruct_batch_size=64)
    tuned = pt.instruction_tuned(few)
    assert (cache_dir / "unit-test-instruct.safetensors").exists()
    assert not same_weights(tuned, pt.pretrained(few))                  # it did fine-tune
    assert same_weights(tuned, pt.instruction_tuned(few))              # the cache gives it back
    other = dataclasses.replace(few, instruct_lr=few.instruct_lr * 2)
    capsys.readouterr()
    redone = pt.instruction_tuned(other)
    assert "fine-tuned with other settings" in capsys.readouterr().out
    assert not same_weights(redone, tuned)


def damage_metadata(path, **changes):
    """Rewrite some of a safetensors file's metadata strings, keeping its tensors (and their checksum)."""
    import json

    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n:])


@pytest.fixture
def quick_pretrain(monkeypatch):
    """`pretrain` stood in for by a fresh model of its own seed: these tests are about the cache."""
    def fake(p, log=print, progress=True):
        torch.manual_seed(7)
        return pt.GPT(p.model).eval(), None
    monkeypatch.setattr(pt, "pretrain", fake)
    return lambda: fake(SMALL)[0]


@pytest.mark.parametrize("changes, why", [
    ({"step": "x"}, "invalid literal for int"),
    ({"extra": "X{"}, "Expecting value"),
    ({"extra": "[1, 2]"}, "'extra' is not a JSON object"),
    ({"config": '{"n_head": 0}'}, "n_head must be a whole number"),
])
def test_damaged_cache_metadata_is_rebuilt_with_a_note(cache_dir, quick_pretrain, capsys, changes, why):
    path = cache_dir / "unit-test-pretrained.safetensors"
    torch.manual_seed(0)
    pt.cache_pretrained(SMALL, pt.GPT(SMALL.model))          # a cache made with the right recipe...
    damage_metadata(path, **changes)                           # ...then damaged, its tensors intact
    model = pt.pretrained(SMALL)
    out = capsys.readouterr().out
    assert "ignoring the cached model unit-test-pretrained.safetensors (damaged:" in out and why in out
    assert out.count("\n") == 1
    assert same_weights(model, quick_pretrain())              # made again, not half-loaded
    assert same_weights(pt.pretrained(SMALL), model)         # and cached again, readable


def test_a_folder_where_the_cache_belongs_is_left_alone(cache_dir, quick_pretrain, capsys):
    folder = cache_dir / "unit-test-pretrained.safetensors"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    model = pt.pretrained(SMALL)
    out = capsys.readouterr().out
    assert "ignoring the cached model unit-test-pretrained.safetensors (damaged:" in out
    assert "is not a file" in out and "could not cache the model at" in out
    assert same_weights(model, quick_pretrain())
    assert (folder / "notes.txt").read_text() == "mine"
