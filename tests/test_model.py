"""The GPT model: shapes and sizes, causality, bad inputs."""

import pytest
import torch

from scratchgpt import GPT2_SIZES, GPTConfig, count_parameters
from scratchgpt.model import GPT

TINY = GPTConfig(vocab_size=500, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)


@pytest.mark.parametrize("size", list(GPT2_SIZES))
def test_gpt2_sizes_on_the_meta_device(size):
    cfg = GPT2_SIZES[size]
    with torch.device("meta"):
        model = GPT(cfg)
    assert model.num_parameters() == count_parameters(cfg)["total"]
    assert model.lm_head.weight is model.transformer.wte.weight
    assert len(model.transformer.h) == cfg.n_layer
    logits = model(torch.zeros(2, 8, dtype=torch.long, device="meta"))
    assert logits.shape == (2, 8, 50257)


def test_untied_count():
    with torch.device("meta"):
        model = GPT(GPT2_SIZES["124M"].with_(tie_weights=False))
    assert model.num_parameters() == 163_037_184 == count_parameters(model.config)["total"]


@pytest.mark.parametrize("cfg", [TINY, TINY.with_(bias=False), TINY.with_(tie_weights=False)])
def test_count_formula_matches_real_tensors(cfg):
    assert GPT(cfg).num_parameters() == count_parameters(cfg)["total"]


def test_output_shape_and_causality():
    model = GPT(TINY).eval()
    idx = torch.randint(0, 500, (3, 16))
    changed = idx.clone()
    changed[:, 9:] = torch.randint(0, 500, (3, 7))
    with torch.no_grad():
        a, b = model(idx), model(changed)
    assert a.shape == (3, 16, 500)
    torch.testing.assert_close(a[:, :9], b[:, :9], atol=0, rtol=0)
    assert not torch.allclose(a[:, 9:], b[:, 9:])


def test_sequence_longer_than_context_is_an_error():
    with pytest.raises(ValueError, match="longer than the context length 16"):
        GPT(TINY)(torch.zeros(1, 17, dtype=torch.long))


@pytest.mark.parametrize("bad", [-1, 500])
def test_token_ids_outside_the_vocabulary_are_an_error(bad):
    idx = torch.zeros(1, 4, dtype=torch.long)
    idx[0, 2] = bad
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 500\)"):
        GPT(TINY)(idx)


def test_dropout_only_in_training():
    model = GPT(TINY.with_(dropout=0.5))
    idx = torch.randint(0, 500, (2, 8))
    model.eval()
    assert torch.equal(model(idx), model(idx))
    model.train()
    assert not torch.equal(model(idx), model(idx))
