"""Every fast path equals the plain one within float tolerance."""

import shutil

import pytest
import torch

from scratchgpt import GPTConfig
from scratchgpt.model import GPT
from scratchgpt.training import make_optimizer, train

CFG = GPTConfig(vocab_size=200, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)


def data(n, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 200, (n * batch, 16), generator=g)
    return [(x[i * batch:(i + 1) * batch], x[i * batch:(i + 1) * batch].roll(-1, 1)) for i in range(n)]


def trained(fused=None, fast=True, batches=None, grad_accum=1):
    torch.manual_seed(0)
    model = GPT(CFG)
    for block in model.transformer.h:
        block.attn.fast = fast
    opt = make_optimizer(model, lr=1e-2, fused=fused)
    train(model, opt, batches, batches[:1], epochs=1, eval_every=1000, grad_clip=None, log=lambda *a: None,
          progress=False, grad_accum=grad_accum)
    return model


def close(a, b, atol=1e-4):
    """Same function: equal logits on fresh data. (Raw weights can differ by more than float noise
    where the true gradient is zero, e.g. the key bias, which softmax ignores; Adam rescales such
    noise to a full step.)"""
    x = data(1, 4, seed=99)[0][0]
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=atol, rtol=1e-4)


def test_fused_adamw_equals_the_plain_loop():
    batches = data(4, 2)
    close(trained(fused=True, batches=batches), trained(fused=False, batches=batches))


def test_fast_attention_trains_like_the_teaching_attention():
    batches = data(4, 2)
    close(trained(fast=True, batches=batches), trained(fast=False, batches=batches))


def test_gradient_accumulation_equals_a_larger_batch():
    small = data(4, 2)
    large = [(torch.cat([small[0][0], small[1][0]]), torch.cat([small[0][1], small[1][1]])),
             (torch.cat([small[2][0], small[3][0]]), torch.cat([small[2][1], small[3][1]]))]
    close(trained(batches=small, grad_accum=2), trained(batches=large, grad_accum=1))


def test_fast_attention_with_dropout_in_training_is_still_causal():
    from scratchgpt.attention import MultiHeadAttention

    layer = MultiHeadAttention(CFG.with_(dropout=0.5)).train()
    x = torch.randn(1, 10, 32, requires_grad=True)
    layer(x)[0, 4].sum().backward()
    assert x.grad[0, 5:].abs().sum() == 0          # position 4 depends on nothing after it


def test_bf16_autocast_trains_close_to_fp32():
    """bf16 keeps 8 bits of mantissa: the same training within a loose tolerance, not float tolerance."""
    from scratchgpt.training import loss_loader

    batches = data(4, 2)
    losses, seen = [], []
    for amp in (None, torch.bfloat16):
        torch.manual_seed(0)
        model = GPT(CFG)
        dtypes = set()   # what the attention projection computes in, during training: proof autocast ran
        hook = model.transformer.h[0].attn.c_attn.register_forward_hook(
            lambda mod, inp, out, dtypes=dtypes: dtypes.add(out.dtype) if mod.training else None)
        train(model, make_optimizer(model, 1e-2), batches, batches[:1], epochs=2, eval_every=1000,
              log=lambda *a: None, progress=False, amp_dtype=amp)
        hook.remove()
        seen.append(dtypes)
        losses.append(loss_loader(model, batches))
    assert seen == [{torch.float32}, {torch.bfloat16}]
    assert losses[0] != losses[1]                       # bf16 did change the arithmetic...
    assert abs(losses[0] - losses[1]) < 0.05 * losses[0]  # ...within the tolerance


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile's CPU backend needs a C++ compiler")
def test_compiled_model_gives_the_same_logits():
    # forward only: compiling the backward too triples this test's 12 s on 2 cores; the trainer's
    # --compile runs the whole step (measured in PERFORMANCE.md)
    torch.manual_seed(0)
    model = GPT(CFG.with_(n_layer=1)).eval()
    x = data(1, 2)[0][0]
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(model)(x), model(x), atol=1e-5, rtol=1e-5)
