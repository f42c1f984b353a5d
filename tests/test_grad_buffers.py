"""Gradients kept in buffers (`GPT.grad_buffers`) equal autograd's: in fp32 and under bf16 autocast,
accumulated over micro-batches, after zeroing, and with frozen weights left alone."""

import pytest
import torch
import torch.nn.functional as F
from scratchgpt.config import GPTConfig
from scratchgpt.lora import apply_lora
from scratchgpt.model import GPT

CFG = GPTConfig(vocab_size=97, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)


def data(n):
    g = torch.Generator().manual_seed(1)
    return [(torch.randint(0, 97, (3, 16), generator=g), torch.randint(0, 97, (3, 16), generator=g)) for _ in range(n)]


def run(model, batches, amp=False, zero_each=False):
    """Backward over the batches (zeroing with set_to_none before each if asked); the gradients."""
    for x, y in batches:
        if zero_each:
            model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        F.cross_entropy(logits.float().flatten(0, 1), y.flatten()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def pair(**flags):
    torch.manual_seed(0)
    plain, fast = GPT(CFG), GPT(CFG)
    fast.load_state_dict(plain.state_dict())
    for k, v in flags.items():
        setattr(fast, k, v)
    return plain, fast


@pytest.mark.parametrize("amp", [False, True])
@pytest.mark.parametrize("tied_in_place", [False, True])
def test_every_gradient_equals_autograds(amp, tied_in_place):
    plain, fast = pair(grad_buffers=True, tied_grad_in_place=tied_in_place)
    batches = data(3)                                    # three backward passes: accumulation into .grad
    want, got = run(plain, batches, amp), run(fast, batches, amp)
    assert want.keys() == got.keys()
    for name in want:                                    # bf16: the same products in the same precision
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)


def test_the_buffers_are_reused_and_a_new_step_starts_from_zero():
    plain, fast = pair(grad_buffers=True)
    first = data(2)
    run(fast, first[:1], zero_each=True)
    kept = fast.transformer.h[0].mlp.c_fc.weight.grad
    got = run(fast, first[1:], zero_each=True)           # set_to_none, then the same buffer is written again
    assert fast.transformer.h[0].mlp.c_fc.weight.grad.data_ptr() == kept.data_ptr()
    want = run(plain, first[1:], zero_each=True)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)


def test_inference_and_switching_off_give_the_plain_model():
    plain, fast = pair(grad_buffers=True)
    x = data(1)[0][0]
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=0, atol=0)
    fast.grad_buffers = False
    assert "forward" not in fast.lm_head.__dict__ and fast.grad_buffers is False


def test_frozen_weights_get_no_gradient_and_lora_still_trains():
    plain, fast = pair()
    apply_lora(plain, rank=2, alpha=4)
    apply_lora(fast, rank=2, alpha=4)
    fast.load_state_dict(plain.state_dict())
    fast.grad_buffers = True                              # the frozen layers inside take the plain path
    batches = data(2)
    want, got = run(plain, batches), run(fast, batches)
    assert want.keys() == got.keys() and got and all(".lora." in n for n in got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-6, msg=name)
