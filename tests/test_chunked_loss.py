"""The chunked cross-entropy is F.cross_entropy: the same loss and gradient, in fp32 and bf16, with
ignored rows, chunk sizes that do and do not divide the rows, and a hand-worked case."""

import math

import pytest
import torch
import torch.nn.functional as F
from scratchgpt.chunked_loss import chunked_cross_entropy
from scratchgpt.training import loss_batch


def test_a_hand_worked_case():
    logits = torch.tensor([[0.0, math.log(3.0)], [2.0, 2.0]], requires_grad=True)
    loss = chunked_cross_entropy(logits, torch.tensor([1, 0]), chunk=1)
    # row 1: softmax (1/4, 3/4), target 1: -log(3/4); row 2: (1/2, 1/2): -log(1/2); the mean of the two
    assert loss.item() == pytest.approx((-math.log(0.75) - math.log(0.5)) / 2, rel=1e-6)
    loss.backward()
    # d loss / d logits = (softmax - one_hot) / rows
    expected = torch.tensor([[0.25, 0.75 - 1.0], [0.5 - 1.0, 0.5]]) / 2
    torch.testing.assert_close(logits.grad, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("chunk", [1, 7, 32, 1000])
def test_loss_and_gradient_equal_f_cross_entropy(dtype, chunk):
    torch.manual_seed(0)
    logits = (torch.randn(50, 503) * 4).to(dtype).requires_grad_()
    targets = torch.randint(0, 503, (50,))
    targets[[3, 17, 40]] = -100                                     # masked rows, as in instruction fine-tuning
    ours = chunked_cross_entropy(logits, targets, chunk=chunk)
    (2.5 * ours).backward()                                         # an upstream gradient other than 1
    grad, logits.grad = logits.grad.clone(), None
    reference = F.cross_entropy(logits.float(), targets)
    (2.5 * reference).backward()
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    assert grad.dtype == dtype and grad[[3, 17, 40]].abs().max() == 0
    tol = 1e-6 if dtype == torch.float32 else 4e-3                  # bf16: one rounding of each gradient
    torch.testing.assert_close(grad.float(), logits.grad.float(), rtol=tol, atol=tol)


def test_it_leaves_the_logits_alone_and_works_without_gradients():
    logits = torch.randn(10, 20)
    before = logits.clone()
    with torch.no_grad():
        loss = chunked_cross_entropy(logits, torch.randint(0, 20, (10,)), chunk=3)
    assert torch.equal(logits, before) and loss.requires_grad is False


def test_bad_shapes_and_chunks_are_refused():
    with pytest.raises(ValueError, match=r"expected logits \(N, V\) and targets \(N,\), got \(2, 3, 4\) and \(6,\)"):
        chunked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="chunk must be at least 1 row, got 0"):
        chunked_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), chunk=0)


def test_linear_cross_entropy_equals_the_head_then_f_cross_entropy():
    from torch import nn
    from scratchgpt.chunked_loss import linear_cross_entropy

    torch.manual_seed(0)
    head = nn.Linear(24, 503, bias=False)
    hidden = torch.randn(50, 24, requires_grad=True)
    targets = torch.randint(0, 503, (50,))
    targets[[2, 30]] = -100
    for _ in range(2):                                              # two backward passes: accumulation
        ours = linear_cross_entropy(hidden, head, targets, chunk=7)
        (0.5 * ours).backward()
    got_h, got_w = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad, head.weight.grad = None, None
    for _ in range(2):
        reference = F.cross_entropy(head(hidden), targets)
        (0.5 * reference).backward()
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(got_h, hidden.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got_w, head.weight.grad, rtol=1e-5, atol=1e-7)
    with torch.no_grad():                                           # evaluation: the loss only, no gradients
        torch.testing.assert_close(linear_cross_entropy(hidden, head, targets), reference, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="takes fp32 hidden states and a bias-free fp32 head"):
        linear_cross_entropy(hidden, nn.Linear(24, 503), targets)


def _plain_and_trainer_models():
    """Two equal small GPTs, the second set up as the trainer runs it, and a seeded generator."""
    from scratchgpt.config import GPTConfig
    from scratchgpt.model import GPT

    cfg = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)
    torch.manual_seed(0)
    plain, fast = GPT(cfg), GPT(cfg)
    fast.load_state_dict(plain.state_dict())
    fast.tied_grad_in_place = fast.grad_buffers = True              # as the trainer runs
    return plain, fast, torch.Generator().manual_seed(1)


def test_gpt_loss_in_the_trainers_setup_equals_autograd_on_the_logits():
    plain, fast, g = _plain_and_trainer_models()
    batches = [(torch.randint(0, 300, (3, 16), generator=g), torch.randint(0, 300, (3, 16), generator=g)) for _ in range(3)]
    for x, y in batches:                                            # gradient accumulation over 3 micro-batches
        (F.cross_entropy(plain(x).flatten(0, 1), y.flatten()) / 3).backward()
        (loss_batch(fast, x, y, chunked=True) / 3).backward()
    assert "_head_grad_partial" in fast.lm_head.__dict__            # the fused head-and-loss path ran
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="token ids must lie in"):
        fast.loss(torch.full((1, 4), 300), torch.zeros(1, 4, dtype=torch.long))


def test_linear_cross_entropy_under_bf16_autocast_equals_autocasts_head_then_f_cross_entropy():
    """Under bf16 autocast the head's products run in bf16 and the softmax in fp32, as autocast runs
    `head(hidden)` and `F.cross_entropy(logits.float(), ...)`: autocast's loss (measurably not fp32's),
    and gradients no further from fp32's than autocast's are."""
    from torch import nn
    from scratchgpt.chunked_loss import linear_cross_entropy

    torch.manual_seed(0)
    head = nn.Linear(48, 503, bias=False)
    hidden = (torch.randn(50, 48) * 3).requires_grad_()
    targets = torch.randint(0, 503, (50,))
    targets[[2, 30]] = -100
    grads, losses = {}, {}
    for name in ("ours", "autocast", "fp32"):
        hidden.grad, head.weight.grad = None, None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name != "fp32"):
            for _ in range(2):                                      # two backward passes: accumulation
                if name == "ours":
                    loss = linear_cross_entropy(hidden, head, targets, chunk=7)
                else:
                    loss = F.cross_entropy(head(hidden).float(), targets)
                (0.5 * loss).backward()
        losses[name], grads[name] = loss.item(), (hidden.grad.clone(), head.weight.grad.clone())
    assert losses["ours"] == pytest.approx(losses["autocast"], rel=1e-4)
    assert abs(losses["ours"] - losses["fp32"]) > 10 * abs(losses["ours"] - losses["autocast"])
    for got, ref, fp32 in zip(grads["ours"], grads["autocast"], grads["fp32"]):
        # fp32's gradients as the exact ones: ours are off by bf16 rounding, no more than autocast's
        ours_off, autocast_off = (got - fp32).abs().max(), (ref - fp32).abs().max()
        assert ours_off < 0.01 * fp32.abs().max() and ours_off <= 1.5 * autocast_off
    with torch.autocast("cpu", dtype=torch.float16), pytest.raises(ValueError, match="not under torch.float16 autocast"):
        linear_cross_entropy(hidden, head, targets)


def test_gpt_loss_under_bf16_autocast_in_the_trainers_setup_equals_autocast_on_the_logits():
    plain, fast, g = _plain_and_trainer_models()
    x, y = torch.randint(0, 300, (3, 16), generator=g), torch.randint(0, 300, (3, 16), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = F.cross_entropy(plain(x).float().flatten(0, 1), y.flatten())
        ours = loss_batch(fast, x, y, chunked=True)
    reference.backward()
    ours.backward()
    assert "_logits_chunk_low" in fast.lm_head.__dict__             # the fused head-and-loss path ran, in bf16
    assert ours.item() == pytest.approx(reference.item(), rel=1e-3)
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        assert (b.grad - a.grad).abs().max() < 0.02 * a.grad.abs().max(), name


def test_linear_cross_entropy_with_a_gradient_of_one_over_steps_and_accumulation():
    """`loss.backward()` (an incoming gradient of exactly 1) hands the weight's gradient buffer over as
    `.grad` without a pass over it: over several steps, with `.grad` cleared between them or added up,
    every gradient must still equal autograd's through the head and `F.cross_entropy`."""
    from torch import nn
    from scratchgpt.chunked_loss import linear_cross_entropy

    torch.manual_seed(0)
    head = nn.Linear(24, 503, bias=False)
    batches = [(torch.randn(40, 24), torch.randint(0, 503, (40,))) for _ in range(4)]

    def reference(*which):
        w = head.weight.detach().clone().requires_grad_()
        sum(F.cross_entropy(batches[i][0] @ w.t(), batches[i][1]) for i in which).backward()
        return w.grad

    head.weight.grad = None
    linear_cross_entropy(batches[0][0], head, batches[0][1], chunk=16).backward()
    first = head.weight.grad
    torch.testing.assert_close(first, reference(0), rtol=1e-5, atol=1e-7)
    linear_cross_entropy(batches[1][0], head, batches[1][1], chunk=16).backward()    # accumulates
    assert head.weight.grad is first
    torch.testing.assert_close(head.weight.grad, reference(0, 1), rtol=1e-5, atol=1e-7)
    for i in (2, 3):                                                # cleared, as optimizer.zero_grad does
        head.weight.grad = None
        linear_cross_entropy(batches[i][0], head, batches[i][1], chunk=16).backward()
        torch.testing.assert_close(head.weight.grad, reference(i), rtol=1e-5, atol=1e-7)
    assert head.weight.grad.data_ptr() != head._head_grad_partial.data_ptr()   # the next pass writes elsewhere


def test_linear_cross_entropy_refuses_a_second_backward_pass():
    from torch import nn
    from scratchgpt.chunked_loss import linear_cross_entropy

    head = nn.Linear(8, 30, bias=False)
    loss = linear_cross_entropy(torch.randn(5, 8), head, torch.randint(0, 30, (5,)))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="runs once per forward pass"):
        loss.backward()


def test_add_in_blocks_adds_bf16_into_fp32_block_by_block():
    from scratchgpt.grad_buffers import add_in_blocks

    total = torch.randn(10, 3)
    part = torch.randn(10, 3).bfloat16()
    expected = total + part.float()                                 # bf16 values are exact in fp32
    add_in_blocks(total, part, block=12)                            # blocks of 4, 4 and 2 rows
    assert torch.equal(total, expected)
    add_in_blocks(total, part, block=1)                             # at least a row at a time
    assert torch.equal(total, expected + part.float())


def test_linear_cross_entropy_twice_before_one_backward():
    """Two losses through the same head summed before one backward pass: each forward pass needs its
    own weight gradient, so the second must not write into the buffer the first still holds."""
    from torch import nn
    from scratchgpt.chunked_loss import linear_cross_entropy

    torch.manual_seed(0)
    head = nn.Linear(16, 200, bias=False)
    (h1, y1), (h2, y2) = [(torch.randn(12, 16), torch.randint(0, 200, (12,))) for _ in range(2)]
    for _ in range(2):                                              # the second time with the buffers kept
        head.weight.grad = None
        (linear_cross_entropy(h1, head, y1) + 0.5 * linear_cross_entropy(h2, head, y2)).backward()
        got = head.weight.grad.clone()
        head.weight.grad = None
        (F.cross_entropy(head(h1), y1) + 0.5 * F.cross_entropy(head(h2), y2)).backward()
        torch.testing.assert_close(got, head.weight.grad, rtol=1e-5, atol=1e-7)
    linear_cross_entropy(h1, head, y1)                              # dropped without a backward pass ...
    loss = linear_cross_entropy(h2, head, y2)                       # ... so the kept buffer is free again
    assert head._head_grad_owner() is loss.grad_fn
