"""The chunked cross-entropy is F.cross_entropy: the same loss and gradient, in fp32 and bf16, with
ignored rows, chunk sizes that do and do not divide the rows, and a hand-worked case."""

import math

import pytest
import torch
import torch.nn.functional as F
from scratchgpt.chunked_loss import chunked_cross_entropy


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
