"""pretrained(profile): trains once, caches, reuses the cache only when it was made the same way."""

import dataclasses

import pytest
import scratchgpt.pretrained as pt
import torch
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


def test_split_text():
    assert pt.split_text("abcdefghij", 0.9) == ("abcdefghi", "j")
    assert pt.split_text("abcdefghij", 0.3) == ("abc", "defghij")
