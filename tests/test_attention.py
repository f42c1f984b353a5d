"""The package's multi-head attention: explicit vs fused path, vs PyTorch's function, and causality."""

import math

import pytest
import torch
import torch.nn.functional as F
from scratchgpt import GPTConfig
from scratchgpt.attention import MultiHeadAttention

CFG = GPTConfig(context_length=32, n_embd=64, n_head=4, dropout=0.0)


def reference(layer, x):
    """Attention written out independently, head by head, with loops."""
    _, T, C = x.shape
    q, k, v = layer.c_attn(x).split(C, dim=2)
    hs = C // layer.n_head
    heads = []
    for h in range(layer.n_head):
        qh, kh, vh = (t[..., h * hs : (h + 1) * hs] for t in (q, k, v))
        scores = qh @ kh.transpose(1, 2) / math.sqrt(hs)
        scores = scores + torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        heads.append(torch.softmax(scores, dim=-1) @ vh)
    return layer.c_proj(torch.cat(heads, dim=-1))


@pytest.mark.parametrize("T", [1, 7, 32])
def test_explicit_fast_and_reference_agree(T):
    layer = MultiHeadAttention(CFG).eval()
    x = torch.randn(2, T, CFG.n_embd)
    with torch.no_grad():
        fast = layer(x)
        layer.fast = False
        explicit = layer(x)
        ref = reference(layer, x)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(explicit, ref, atol=1e-5, rtol=1e-5)


def test_matches_scaled_dot_product_attention_directly():
    layer = MultiHeadAttention(CFG, fast=False).eval()
    x = torch.randn(3, 16, CFG.n_embd)
    with torch.no_grad():
        q, k, v = (t.view(3, 16, 4, 16).transpose(1, 2) for t in layer.c_attn(x).split(64, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(3, 16, 64)
        torch.testing.assert_close(layer(x), layer.c_proj(y), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("fast", [True, False])
def test_causal(fast):
    layer = MultiHeadAttention(CFG, fast=fast).eval()
    x = torch.randn(2, 20, CFG.n_embd)
    x2 = x.clone()
    x2[:, 12:] = torch.randn(2, 8, CFG.n_embd)
    with torch.no_grad():
        a, b = layer(x), layer(x2)
    torch.testing.assert_close(a[:, :12], b[:, :12], atol=0, rtol=0)
    assert not torch.allclose(a[:, 12:], b[:, 12:])


def test_attention_weights_rows_sum_to_one_and_hide_the_future():
    layer = MultiHeadAttention(CFG).eval()
    q, k = torch.randn(2, 4, 10, 16), torch.randn(2, 4, 10, 16)
    w = layer.attention_weights(q, k)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 10))
    assert torch.all(w.triu(diagonal=1) == 0)
