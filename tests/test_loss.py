"""The engine's fused loss is F.cross_entropy: the same loss and gradients, in fp32 and bf16, with
ignored rows, chunk sizes that do and do not divide the rows, and a hand-worked case; and the
contract's unsafe uses (autograd.grad, hooks, two losses, a second backward, DDP and torch.compile
wrappers) either agree with autograd or are refused."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from scratchgpt.config import GPTConfig
from scratchgpt.engine import chunked_cross_entropy, fused_loss, linear_cross_entropy, training_loss
from scratchgpt.engine.loss import add_in_blocks
from scratchgpt.model import GPT


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
    targets[[3, 17, 40]] = -100                      # masked rows, as in instruction fine-tuning
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
    shapes = r"expected logits \(N, V\) and targets \(N,\), got \(2, 3, 4\) and \(6,\)"
    with pytest.raises(ValueError, match=shapes):
        chunked_cross_entropy(torch.zeros(2, 3, 4), torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="chunk must be at least 1 row, got 0"):
        chunked_cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), chunk=0)


def test_linear_cross_entropy_equals_the_head_then_f_cross_entropy():
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
        loss = linear_cross_entropy(hidden, head, targets)
        torch.testing.assert_close(loss, reference, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="takes fp32 hidden states and a bias-free fp32 head"):
        linear_cross_entropy(hidden, nn.Linear(24, 503), targets)


def _two_equal_gpts():
    """Two equal small GPTs (tied head) and a seeded generator."""
    cfg = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)
    torch.manual_seed(0)
    plain, fast = GPT(cfg), GPT(cfg)
    fast.load_state_dict(plain.state_dict())
    return plain, fast, torch.Generator().manual_seed(1)


def _batch(g, B=3):
    return torch.randint(0, 300, (B, 16), generator=g), torch.randint(0, 300, (B, 16), generator=g)


def _reference(model, x, y):
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


def test_fused_loss_of_a_gpt_equals_autograd_on_the_logits_over_accumulated_micro_batches():
    plain, fast, g = _two_equal_gpts()
    for x, y in [_batch(g) for _ in range(3)]:       # gradient accumulation over 3 micro-batches
        (_reference(plain, x, y) / 3).backward()
        (fused_loss(fast, x, y, chunk=20) / 3).backward()
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)
    with pytest.raises(ValueError, match="token ids must lie in"):
        fused_loss(fast, torch.full((1, 4), 300), torch.zeros(1, 4, dtype=torch.long))


def test_autograd_grad_and_hooks_see_the_whole_gradient_of_the_tied_weight():
    """`torch.autograd.grad` fills no `.grad`, and a hook on the tied weight must see both of its
    gradients (the head's and the embedding's) summed, as with F.cross_entropy."""
    plain, fast, g = _two_equal_gpts()
    x, y = _batch(g)
    seen = []
    fast.transformer.wte.weight.register_hook(lambda grad: seen.append(grad.clone()))
    (ours,) = torch.autograd.grad(fused_loss(fast, x, y), fast.transformer.wte.weight)
    (ref,) = torch.autograd.grad(_reference(plain, x, y), plain.transformer.wte.weight)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(seen[0], ref, rtol=1e-5, atol=1e-7)
    assert all(p.grad is None for p in fast.parameters())          # autograd.grad leaves .grad alone


def test_gradients_kept_across_steps_are_added_to_not_overwritten():
    plain, fast, g = _two_equal_gpts()
    batches = [_batch(g) for _ in range(2)]
    for model, loss in ((plain, _reference), (fast, fused_loss)):
        for x, y in batches:                                        # no zero_grad between the two steps
            loss(model, x, y).backward()
    torch.testing.assert_close(fast.lm_head.weight.grad, plain.lm_head.weight.grad, rtol=1e-5, atol=1e-7)


def test_fused_loss_refuses_wrapped_models_and_training_loss_runs_their_forward_pass():
    plain, fast, g = _two_equal_gpts()
    x, y = _batch(g)
    compiled = torch.compile(fast, backend="eager")                 # a torch.compile wrapper, no C++ needed
    with pytest.raises(TypeError, match="not a DistributedDataParallel or torch.compile wrapper"):
        fused_loss(compiled, x, y)
    training_loss(compiled, x, y).backward()         # the wrapper's own forward pass, then chunked
    _reference(plain, x, y).backward()
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_linear_cross_entropy_under_torch_compile_runs_eagerly_and_agrees():
    torch.manual_seed(0)
    head = nn.Linear(24, 503, bias=False)
    hidden = torch.randn(50, 24, requires_grad=True)
    targets = torch.randint(0, 503, (50,))
    compiled = torch.compile(lambda h: linear_cross_entropy(torch.tanh(h), head, targets, chunk=7),
                             backend="eager")
    compiled(hidden).backward()
    got = hidden.grad.clone(), head.weight.grad.clone()
    hidden.grad = head.weight.grad = None
    F.cross_entropy(head(torch.tanh(hidden)), targets).backward()
    torch.testing.assert_close(got[0], hidden.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(got[1], head.weight.grad, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_fused_loss_under_distributed_data_parallel_is_refused_and_the_trainers_loss_averages(tmp_path):
    """Two processes of a gloo DDP group: `fused_loss` refuses the wrapper; `training_loss` goes through
    its forward pass, so DDP averages the gradients: each process's `.grad` is the mean of both."""
    import subprocess
    import sys

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("refused, averaged") == 2, out.stdout


DDP_SCRIPT = """
import torch, torch.distributed as dist, torch.nn.functional as F
from scratchgpt.config import GPTConfig
from scratchgpt.engine import fused_loss, training_loss
from scratchgpt.model import GPT
dist.init_process_group("gloo")
rank = dist.get_rank()
cfg = GPTConfig(vocab_size=300, context_length=16, n_embd=32, n_layer=2, n_head=4, dropout=0.0)
torch.manual_seed(0)
model, reference = GPT(cfg), GPT(cfg)
reference.load_state_dict(model.state_dict())
g = torch.Generator().manual_seed(1)
batches = [(torch.randint(0, 300, (2, 16), generator=g), torch.randint(0, 300, (2, 16), generator=g))
           for _ in range(2)]
ddp = torch.nn.parallel.DistributedDataParallel(model)
try:
    fused_loss(ddp, *batches[rank])
    raise SystemExit("fused_loss accepted a DDP wrapper")
except TypeError:
    pass
training_loss(ddp, *batches[rank]).backward()
sum(F.cross_entropy(reference(x).flatten(0, 1), y.flatten()) for x, y in batches).div(2).backward()
for (name, a), b in zip(reference.named_parameters(), model.parameters()):
    torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)
print("refused, averaged")
dist.destroy_process_group()
"""


def test_linear_cross_entropy_under_bf16_autocast_equals_autocasts_head_then_f_cross_entropy():
    """Under bf16 autocast the head's products run in bf16 and the softmax in fp32, as autocast runs
    `head(hidden)` and `F.cross_entropy(logits.float(), ...)`: autocast's loss (measurably not fp32's),
    and gradients no further from fp32's than autocast's are."""
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
    fp16 = torch.autocast("cpu", dtype=torch.float16)
    with fp16, pytest.raises(ValueError, match="not under torch.float16 autocast"):
        linear_cross_entropy(hidden, head, targets)


def test_fused_loss_under_bf16_autocast_equals_autocast_on_the_logits():
    plain, fast, g = _two_equal_gpts()
    x, y = _batch(g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reference = F.cross_entropy(plain(x).float().flatten(0, 1), y.flatten())
        ours = fused_loss(fast, x, y)
    reference.backward()
    ours.backward()
    assert ours.item() == pytest.approx(reference.item(), rel=1e-3)
    for (name, a), b in zip(plain.named_parameters(), fast.parameters()):
        assert (b.grad - a.grad).abs().max() < 0.02 * a.grad.abs().max(), name


def test_linear_cross_entropy_with_a_gradient_of_one_over_steps_and_accumulation():
    """`loss.backward()` (an incoming gradient of exactly 1) hands the weight's gradient over without a
    pass over it: over several steps, with `.grad` cleared between them or added up, every gradient
    must still equal autograd's through the head and `F.cross_entropy`."""
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
    kept = head.weight.grad
    loss = linear_cross_entropy(batches[0][0], head, batches[0][1], chunk=16)
    assert torch.equal(head.weight.grad, kept)                      # a forward pass alone leaves .grad alone
    del loss


def test_linear_cross_entropy_refuses_a_second_backward_pass():
    head = nn.Linear(8, 30, bias=False)
    loss = linear_cross_entropy(torch.randn(5, 8), head, torch.randint(0, 30, (5,)))
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a second one \\(retain_graph=True\\) is not supported"):
        loss.backward()


def test_add_in_blocks_adds_bf16_into_fp32_block_by_block():
    total = torch.randn(10, 3)
    part = torch.randn(10, 3).bfloat16()
    expected = total + part.float()                                 # bf16 values are exact in fp32
    add_in_blocks(total, part, block=12)                            # blocks of 4, 4 and 2 rows
    assert torch.equal(total, expected)
    add_in_blocks(total, part, block=1)                             # at least a row at a time
    assert torch.equal(total, expected + part.float())


def test_linear_cross_entropy_twice_before_one_backward():
    """Two losses through the same head summed before one backward pass: each forward pass keeps its
    own weight gradient until the backward pass adds them."""
    torch.manual_seed(0)
    head = nn.Linear(16, 200, bias=False)
    (h1, y1), (h2, y2) = [(torch.randn(12, 16), torch.randint(0, 200, (12,))) for _ in range(2)]
    for _ in range(2):
        head.weight.grad = None
        (linear_cross_entropy(h1, head, y1) + 0.5 * linear_cross_entropy(h2, head, y2)).backward()
        got = head.weight.grad.clone()
        head.weight.grad = None
        (F.cross_entropy(head(h1), y1) + 0.5 * F.cross_entropy(head(h2), y2)).backward()
        torch.testing.assert_close(got, head.weight.grad, rtol=1e-5, atol=1e-7)
