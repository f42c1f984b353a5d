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


def _causal_attention_and_grad(attend, qkv, n_head, dtype):
    """`attend(q, k, v)` on heads split from `qkv` cast to `dtype`: (output, gradient of qkv), in float64."""
    B, T, C3 = qkv.shape
    x = qkv.to(dtype).detach().requires_grad_()
    q, k, v = (t.view(B, T, n_head, C3 // 3 // n_head).transpose(1, 2) for t in x.split(C3 // 3, dim=2))
    y = attend(q, k, v)
    y.backward(torch.randn(y.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64).to(dtype))
    return y.double(), x.grad.double()


def _sdpa(q, k, v):
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def test_spelled_attention_is_exact_causal_attention_with_its_mask_outside_autograd():
    """The spelled-out path, run in float64, gives PyTorch's causal attention and its gradient to 1e-12:
    masking outside autograd loses no gradient (softmax's is zero where its output is)."""
    layer = MultiHeadAttention(CFG)
    qkv = torch.randn(2, 32, 3 * CFG.n_embd, dtype=torch.float64)
    ours = _causal_attention_and_grad(lambda q, k, v: layer._spelled_causal_attention(q, k, v, 0.0),
                                      qkv, 4, torch.float64)
    ref = _causal_attention_and_grad(_sdpa, qkv, 4, torch.float64)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12)


def test_bf16_attention_on_a_cpu_is_spelled_out_up_to_its_limit_and_as_accurate_as_the_fused_kernel():
    """In bf16 on a CPU, contexts up to SPELLED_BF16_MAX_T take the spelled-out path: its output and
    gradient against a float64 reference are within 1% and at most 1.5x the fused bf16 kernel's error.
    Longer contexts, and fp32, take the fused kernel itself (bit for bit)."""
    from scratchgpt.attention import SPELLED_BF16_MAX_T

    cfg = GPTConfig(context_length=SPELLED_BF16_MAX_T + 8, n_embd=128, n_head=2, dropout=0.0)
    layer = MultiHeadAttention(cfg)
    calls = []
    spelled = layer._spelled_causal_attention
    layer._spelled_causal_attention = lambda *a: calls.append(1) or spelled(*a)
    ours_fn = layer._fast_attention

    def rel(a, b):
        return ((a - b).norm() / b.norm()).item()

    qkv = torch.randn(2, 256, 3 * cfg.n_embd, dtype=torch.float64)
    ref = _causal_attention_and_grad(_sdpa, qkv, 2, torch.float64)
    fused = _causal_attention_and_grad(_sdpa, qkv, 2, torch.bfloat16)
    ours = _causal_attention_and_grad(ours_fn, qkv, 2, torch.bfloat16)
    assert calls == [1]
    for o, f, r in zip(ours, fused, ref):
        assert rel(o, r) < 0.01 and rel(o, r) <= 1.5 * rel(f, r), (rel(o, r), rel(f, r))

    for T, dtype in [(SPELLED_BF16_MAX_T + 1, torch.bfloat16), (256, torch.float32)]:
        qkv = torch.randn(1, T, 3 * cfg.n_embd, dtype=torch.float64)
        for a, b in zip(_causal_attention_and_grad(ours_fn, qkv, 2, dtype),
                        _causal_attention_and_grad(_sdpa, qkv, 2, dtype)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert calls == [1]
