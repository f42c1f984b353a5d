"""The loss of the command-line trainer: cross-entropy over a large vocabulary without (N, V) tensors.

`F.cross_entropy(logits.float(), targets)` on a batch of 2 x 256 positions of GPT-2's 50,257 tokens
builds four (N, V) tensors of 103 MB each: the fp32 copy of the logits, the log-softmax, the gradient
of the loss with respect to it, and the gradient of the logits.

- `chunked_cross_entropy(logits, targets)` computes the same mean loss from the logits as they are
  (bf16 or fp32), `chunk` rows at a time in one reused fp32 buffer, keeping two numbers per row.
- `linear_cross_entropy(hidden, head, targets)` goes one step further: it takes the hidden states and
  the output head and computes logits, loss and both gradients `chunk` rows at a time, so no (N, V)
  tensor exists at all. The gradients are computed in the forward pass and handed to autograd in the
  backward pass, scaled by the incoming gradient. Under bf16 autocast the head's products run in bf16
  and the softmax in fp32, as `F.cross_entropy(logits.float(), ...)` computes it.
- `fused_loss(model, idx, targets)`: a GPT's loss through `linear_cross_entropy`.

The contract: both functions are ordinary autograd functions. Their gradients reach `.grad` through
autograd, so `.backward()`, `torch.autograd.grad`, gradient hooks, gradient accumulation, two losses
summed before one backward pass, and DistributedDataParallel's gradient averaging see what they would
see with `F.cross_entropy`. Under `torch.compile` they run eagerly (a graph break). Refused with an
error: fp16 autocast (the gradients of the logits, about 1 / N each, would underflow), a second
backward pass through one forward pass of `linear_cross_entropy` (its gradient was handed over
already; `retain_graph=True`), and `fused_loss` on a wrapped model (DistributedDataParallel or
torch.compile, whose wrappers must run the forward pass; `training_loss` then computes
`chunked_cross_entropy` of the logits the wrapper returns).

Rows whose target is `ignore_index` (-100, as in `F.cross_entropy`) count for nothing. Tested against
`F.cross_entropy` (loss and gradients) in `tests/test_loss.py`.
"""

from __future__ import annotations

import torch
from torch import nn

IGNORE_INDEX = -100


class _ChunkedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor, chunk: int, ignore_index: int):
        counted = targets != ignore_index                                      # (N,)
        safe = targets.masked_fill(~counted, 0)
        N = logits.size(0)
        lse = torch.empty(N, dtype=torch.float32, device=logits.device)
        buf = torch.empty(min(chunk, N), logits.size(1), dtype=torch.float32, device=logits.device)  # reused
        for s in range(0, N, chunk):
            e = min(s + chunk, N)
            rows = buf[: e - s].copy_(logits[s:e])
            top = rows.amax(dim=1, keepdim=True)                               # log-sum-exp without overflow
            lse[s:e] = (top + rows.sub_(top).exp_().sum(dim=1, keepdim=True).log_()).squeeze(1)
        target_logit = logits.gather(1, safe[:, None]).squeeze(1).float()      # (N,)
        count = counted.sum()
        ctx.save_for_backward(logits, safe, counted, lse, count)
        ctx.chunk = chunk
        # NaN when nothing counts, as F's
        return ((lse - target_logit) * counted).sum() / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        logits, safe, counted, lse, count = ctx.saved_tensors
        scale = counted.float() * (grad_loss / count)                           # (N,): 0 for ignored rows
        grad = torch.empty_like(logits)
        N = logits.size(0)
        buf = torch.empty(min(ctx.chunk, N), logits.size(1), dtype=torch.float32, device=logits.device)
        for s in range(0, N, ctx.chunk):
            e = min(s + ctx.chunk, N)
            p = buf[: e - s].copy_(logits[s:e]).sub_(lse[s:e, None]).exp_()  # softmax of the rows, (rows, V)
            p[torch.arange(e - s, device=p.device), safe[s:e]] -= 1.0         # minus the one-hot target
            grad[s:e] = p.mul_(scale[s:e, None])
        return grad, None, None, None


def chunked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, chunk: int = 32,
                          ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy of `logits` (N, V) against `targets` (N,), like `F.cross_entropy(logits.float(),
    targets)`, computed `chunk` rows at a time in fp32; the gradient has the logits' dtype."""
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, V) and targets (N,), got {tuple(logits.shape)} "
                         f"and {tuple(targets.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 row, got {chunk}")
    return _ChunkedCrossEntropy.apply(logits, targets, chunk, ignore_index)


def add_in_blocks(total: torch.Tensor, part: torch.Tensor, block: int = 1 << 18) -> None:
    """`total += part` for a bf16 `part` and an fp32 `total` of two dimensions, about `block` values at a
    time: PyTorch's mixed-dtype `add_` slows down on large matrices, and blocks keep both in cache."""
    rows = max(1, block // max(1, total.size(1)))
    for s in range(0, total.size(0), rows):
        total[s:s + rows].add_(part[s:s + rows])


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk: int, ignore_index: int, grad_h: bool, grad_w: bool,
                low: torch.dtype | None):
        N, V = hidden.size(0), weight.size(0)
        counted = targets != ignore_index
        safe = targets.masked_fill(~counted, 0)
        count = counted.sum()
        scale = counted.to(hidden.dtype) / count                               # (N,): 0 for ignored rows
        buf = hidden.new_empty(min(chunk, N), V)                               # a chunk's fp32 logits
        if low is not None:   # the products in `low` (bf16), as autocast would run them; the softmax in fp32
            w, hid, buf_low = weight.to(low), hidden.to(low), hidden.new_empty(min(chunk, N), V, dtype=low)
        else:
            w, hid, buf_low = weight, hidden, None
        grad_hidden = torch.empty_like(hidden) if grad_h else None
        grad_weight = torch.empty_like(weight) if grad_w else None
        gw_low = torch.empty_like(weight, dtype=low) if grad_w and low is not None else None
        losses = torch.empty(N, dtype=hidden.dtype, device=hidden.device)
        for s in range(0, N, chunk):
            e = min(s + chunk, N)
            h = hid[s:e]
            if low is None:
                z = torch.mm(h, w.t(), out=buf[: e - s])                        # logits (rows, V)
            else:
                z = buf[: e - s].copy_(torch.mm(h, w.t(), out=buf_low[: e - s]))
            target_logit = z.gather(1, safe[s:e, None])
            top = z.amax(dim=1, keepdim=True)
            total = z.sub_(top).exp_().sum(dim=1, keepdim=True)
            losses[s:e] = (top + total.log() - target_logit).squeeze(1)
            if not (grad_h or grad_w):
                continue
            z.div_(total)                                                     # softmax
            z[torch.arange(e - s, device=z.device), safe[s:e]] -= 1.0         # minus the one-hot target
            z.mul_(scale[s:e, None])                                          # d loss / d logits, fp32
            if low is None:
                if grad_h:
                    torch.mm(z, w, out=grad_hidden[s:e])                      # (rows, C)
                if grad_w:
                    grad_weight.addmm_(z.t(), h) if s else torch.mm(z.t(), h, out=grad_weight)  # (V, C)
                continue
            # rounded to `low` for its products
            g = buf_low[: e - s].copy_(z)
            if grad_h:
                grad_hidden[s:e] = torch.mm(g, w)
            if grad_w:
                torch.mm(g.t(), h, out=gw_low)
                add_in_blocks(grad_weight, gw_low) if s else grad_weight.copy_(gw_low)
        ctx.grads = [grad_hidden, grad_weight]
        return (losses * counted).sum() / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        if ctx.grads is None:
            raise RuntimeError("linear_cross_entropy computes its gradients in the forward pass and hands "
                               "them over in one backward pass; a second one (retain_graph=True) is not "
                               "supported: compute the loss again")
        grads, ctx.grads = ctx.grads, None       # handed over: autograd may keep them as .grad
        # `loss.backward()` passes exactly 1 on the CPU: then no pass over the (V, C) gradient is needed
        one = grad_loss.device.type == "cpu" and grad_loss.item() == 1.0
        grad_hidden, grad_weight = (g if g is None or one else g.mul_(grad_loss) for g in grads)
        return grad_hidden, grad_weight, None, None, None, None, None, None


@torch.compiler.disable   # data-dependent loops in Python: under torch.compile they run eagerly
def linear_cross_entropy(hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, chunk: int = 512,
                         ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy of `head(hidden)` (hidden (N, C) fp32, a bias-free fp32 `nn.Linear` head)
    against `targets` (N,), without the (N, V) logits. Under bf16 autocast the head's products run in
    bf16 and the softmax in fp32; fp16 autocast is refused (see the module's contract)."""
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(f"expected hidden (N, C) and targets (N,), got {tuple(hidden.shape)} "
                         f"and {tuple(targets.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 row, got {chunk}")
    low = (torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type)
           else None)
    if low not in (None, torch.bfloat16):
        raise ValueError("linear_cross_entropy runs in fp32 or under bf16 autocast, "
                         f"not under {low} autocast")
    if head.bias is not None or hidden.dtype != torch.float32 or head.weight.dtype != torch.float32:
        raise ValueError("linear_cross_entropy takes fp32 hidden states and a bias-free fp32 head")
    grads = torch.is_grad_enabled()   # without gradients (evaluation) only the loss is computed
    return _LinearCrossEntropy.apply(hidden, head.weight, targets, chunk, ignore_index,
                                     grads and hidden.requires_grad, grads and head.weight.requires_grad, low)


def can_fuse(model, device) -> bool:
    """Whether `fused_loss` can compute this model's loss: a model with `hidden` and a plain bias-free fp32
    head (not a LoRA-wrapped one), run in fp32 or under bf16 autocast."""
    head, kind = getattr(model, "lm_head", None), torch.device(device).type
    autocast_ok = not torch.is_autocast_enabled(kind) or torch.get_autocast_dtype(kind) == torch.bfloat16
    return (autocast_ok and hasattr(model, "hidden") and type(head) is nn.Linear and head.bias is None
            and head.weight.dtype == torch.float32)


def wrapped(model) -> bool:
    """Whether `model` is a DistributedDataParallel or torch.compile wrapper around a model."""
    return (isinstance(model, nn.parallel.DistributedDataParallel)
            or isinstance(getattr(model, "_orig_mod", None), nn.Module))


def fused_loss(model, idx: torch.Tensor, targets: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """`F.cross_entropy(model(idx).flatten(0, 1), targets.flatten())` for a GPT, through
    `linear_cross_entropy`: the same loss and gradients, no (B·T, V) logits."""
    if wrapped(model):
        raise TypeError("fused_loss needs the model itself, not a DistributedDataParallel or torch.compile "
                        "wrapper (their forward pass must run for them to work): use "
                        "F.cross_entropy(net(x).flatten(0, 1), y.flatten()) with a wrapped model")
    if not can_fuse(model, idx.device):
        raise ValueError("fused_loss needs a model with `hidden` and a bias-free fp32 `lm_head`, "
                         "run in fp32 or "
                         "under bf16 autocast")
    return linear_cross_entropy(model.hidden(idx).flatten(0, 1), model.lm_head, targets.flatten(),
                                chunk=chunk)


def training_loss(net, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The command-line trainer's loss of a batch: `fused_loss` for a model that allows it, else (a
    DistributedDataParallel or torch.compile wrapper, a LoRA head) `chunked_cross_entropy` of the
    logits `net` returns. The same value as `F.cross_entropy` either way."""
    if not wrapped(net) and can_fuse(net, idx.device):
        return fused_loss(net, idx, targets)
    return chunked_cross_entropy(net(idx).flatten(0, 1), targets.flatten())
