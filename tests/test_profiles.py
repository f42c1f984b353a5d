import pytest

from scratchgpt import GPT2_SIZES, PROFILES, count_parameters, profile, seed_everything
from scratchgpt.config import GPT3_175B, GPTConfig


def test_default_is_tiny(monkeypatch):
    monkeypatch.delenv("SCRATCHGPT_PROFILE", raising=False)
    assert profile().name == "tiny"


def test_environment_chooses(monkeypatch):
    monkeypatch.setenv("SCRATCHGPT_PROFILE", "gpt2")
    assert profile().name == "gpt2" and profile().weights == "124M"
    assert profile("tiny").name == "tiny"  # an explicit name wins


def test_unknown_profile_lists_valid_ones(monkeypatch):
    monkeypatch.setenv("SCRATCHGPT_PROFILE", "huge")
    with pytest.raises(ValueError, match=r"unknown profile 'huge'.*SCRATCHGPT_PROFILE.*tiny, gpt2"):
        profile()


def test_every_profile_has_one_window_of_every_text_it_uses():
    """The bug this guards: a profile whose windows are longer than its validation text (GPT-2's
    context 1024 against The Verdict's 534 held-out tokens) crashed notebooks 04 and 05."""
    from scratchgpt import gpt2_tokenizer, read_text
    from scratchgpt.dataset import split_text
    from scratchgpt.evaluation import HELD_OUT_WINDOW

    enc = gpt2_tokenizer()
    for p in PROFILES.values():
        assert p.window <= p.model.context_length
        train_text, val_text = split_text(read_text(p.pretrain_text), p.train_ratio)
        verdict_val = split_text(read_text("the-verdict.txt"), 0.9)[1]   # notebook 06's held-out text
        for text in (train_text, val_text):
            assert len(enc.encode(text)) >= p.window + 1, p.name
        assert len(enc.encode(verdict_val)) >= min(p.window, HELD_OUT_WINDOW) + 1, p.name
        assert len(enc.encode(train_text)) // (p.window * p.batch_size) >= p.grad_accum, p.name


def test_seed_everything_repeats():
    import random

    import numpy as np
    import torch

    seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_parameter_counts_match_published_gpt2_sizes():
    # published sizes, with the output head tied to the token embedding as GPT-2 ships
    expected = {"124M": 124_439_808, "355M": 354_823_168, "774M": 774_030_080, "1558M": 1_557_611_200}
    for size, cfg in GPT2_SIZES.items():
        assert count_parameters(cfg)["total"] == expected[size], size
    untied = count_parameters(GPT2_SIZES["124M"].with_(tie_weights=False))["total"]
    assert untied == 163_037_184


def test_gpt3_is_about_175_billion():
    assert 174e9 < count_parameters(GPT3_175B)["total"] < 176e9


def test_bad_head_count_is_an_error():
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(n_embd=100, n_head=3)


def test_the_test_only_standin_shapes_the_model_and_caps_the_passes(monkeypatch, tmp_path, capsys):
    """With the stand-in checkpoint the gpt2 profiles take its shape and run one pass of each loop; the
    tiny profile (no weights) is untouched, and every use says that unverified weights are in play."""
    import torch
    from safetensors.torch import save_file

    from scratchgpt.course.profiles import STANDIN_ENV, STANDIN_LIMITS

    d, vocab, context = 64, 100, 32
    tensors = {"wte.weight": torch.zeros(vocab, d), "wpe.weight": torch.zeros(context, d)}
    tensors |= {f"h.{i}.ln_1.weight": torch.ones(d) for i in range(2)}
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    monkeypatch.setenv(STANDIN_ENV, str(path))
    p = profile("gpt2")
    assert p.model == GPTConfig(vocab_size=vocab, context_length=context, n_embd=d, n_layer=2, n_head=1,
                                dropout=0.0)
    assert all(getattr(p, k) == v for k, v in STANDIN_LIMITS.items()) and p.weights_file == str(path)
    assert PROFILES["gpt2"].classify_epochs > p.classify_epochs \
        and PROFILES["gpt2"].compare_steps > p.compare_steps
    assert PROFILES["gpt2"].tuning_examples is None and p.tuning_examples == 24
    assert "TEST-ONLY stand-in weights" in capsys.readouterr().err
    assert profile("tiny") == PROFILES["tiny"]


def test_the_standins_instruction_tuned_cache_stays_out_of_data(monkeypatch, tmp_path):
    """A model fine-tuned from stand-in weights is cached beside the stand-in (a folder the tests own),
    never in data/ where it would look like a real GPT-2 fine-tune; the tiny profile's stays in data/."""
    import dataclasses

    from scratchgpt.course.models import instruct_cache_path
    from scratchgpt.paths import DATA_DIR

    assert instruct_cache_path(PROFILES["gpt2"]).parent == DATA_DIR
    standin = dataclasses.replace(PROFILES["gpt2"], weights_file=str(tmp_path / "model.safetensors"))
    assert instruct_cache_path(standin) == tmp_path / "gpt2-instruct.safetensors"
    assert instruct_cache_path(PROFILES["tiny"]) == DATA_DIR / "tiny-instruct.safetensors"
