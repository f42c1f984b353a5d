"""Cross-entropy over a large vocabulary, a few rows at a time: the same loss, far less memory traffic.

`F.cross_entropy(logits.float(), targets)` on a batch of 2 x 256 positions of GPT-2's 50,257 tokens
builds four (N, V) tensors of 103 MB each: the fp32 copy of bf16 logits, the log-softmax, the
gradient of the loss with respect to it (zeroed, then one entry per row written), and the gradient
of the logits. Each is freshly allocated, so every step also faults in new pages. On a 2-core Xeon
with AMX that was a fifth of a bf16 training step of GPT-2 124M.

`chunked_cross_entropy` computes the same mean loss from the logits as they are (bf16 or fp32):
- forward: the log-sum-exp of each row, `chunk` rows at a time in one reused fp32 buffer, and the
  target's logit: only these two numbers per row are kept;
- backward: the gradient `softmax(row) - one_hot(target)`, scaled by the incoming gradient over the
  number of counted rows, again `chunk` rows at a time, written straight into one tensor of the
  logits' dtype.

`linear_cross_entropy` goes one step further for training: it takes the hidden states and the
output head's weight and computes logits, loss and both gradients `chunk` rows at a time, so no
(N, V) tensor is allocated at all (reused (chunk, V) buffers instead). The gradients are computed in the
forward pass (the head's three products per chunk, each streaming the 154 MB weight) and scaled by the
incoming gradient in the backward pass (in place, and not at all for `loss.backward()`'s gradient of 1;
the weight's gradient buffer then becomes `.grad` itself, so the backward pass runs once per forward
pass). Under bf16 autocast the three products run in bf16 (the weight
cast once per call into a kept buffer, as autocast would cast it) and the softmax in fp32, as
`F.cross_entropy(logits.float(), ...)` computes it: on a 2-core Zen 4 that made a bf16 training step of
GPT-2 124M (2 x 256) 6-9% faster than the head under autocast and `chunked_cross_entropy`, whose two
fresh (N, V) bf16 tensors, logits and their gradient, cost page faults at every step.

Rows whose target is `ignore_index` (-100, as in `F.cross_entropy`) count for nothing, as in
instruction fine-tuning's masked prompts. Tested against `F.cross_entropy` (loss and gradient) in
`tests/test_chunked_loss.py`.
"""

from __future__ import annotations

import weakref

import torch
from torch import nn

from .grad_buffers import add_in_blocks, kept

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
        return ((lse - target_logit) * counted).sum() / count                  # NaN when nothing counts, as F's

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
        raise ValueError(f"expected logits (N, V) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}")
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1 row, got {chunk}")
    return _ChunkedCrossEntropy.apply(logits, targets, chunk, ignore_index)


def _partial_buffer(ctx, head: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """Where this forward pass writes the head's weight gradient: the buffer the head keeps, unless an
    earlier forward pass whose backward has not run yet still holds it (two losses summed before one
    `.backward()`); then a buffer of its own."""
    owner = head.__dict__.get("_head_grad_owner")
    earlier = owner() if owner is not None else None
    if earlier is not None and not earlier.used:
        return torch.empty_like(weight)
    head.__dict__["_head_grad_owner"] = weakref.ref(ctx)      # gone with its graph, so a dropped loss frees it
    return kept(head, "_head_grad_partial", weight.shape, weight)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, head, chunk: int, ignore_index: int, grad_h: bool, grad_w: bool,
                low: torch.dtype | None):
        N, V = hidden.size(0), weight.size(0)
        rows = min(chunk, N)
        counted = targets != ignore_index
        safe = targets.masked_fill(~counted, 0)
        count = counted.sum()
        scale = counted.to(hidden.dtype) / count                               # (N,): 0 for ignored rows
        buf = kept(head, "_logits_chunk", (rows, V), hidden)                  # fp32 logits of a chunk
        if low is not None:   # the products in `low` (bf16), as autocast would run them; the softmax in fp32
            w = kept(head, "_weight_cast", weight.shape, weight, low).copy_(weight)
            hid, buf_low = hidden.to(low), kept(head, "_logits_chunk_low", (rows, V), hidden, low)
        else:
            w, hid, buf_low = weight, hidden, None
        ctx.grad_hidden = torch.empty_like(hidden) if grad_h else None
        ctx.grad_weight = _partial_buffer(ctx, head, weight) if grad_w else None
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
            if grad_h or grad_w:
                z.div_(total)                                                 # softmax
                z[torch.arange(e - s, device=z.device), safe[s:e]] -= 1.0     # minus the one-hot target
                z.mul_(scale[s:e, None])                                      # d loss / d logits, fp32
                if low is None:
                    if grad_h:
                        torch.mm(z, w, out=ctx.grad_hidden[s:e])              # (rows, C)
                    if grad_w:
                        ctx.grad_weight.addmm_(z.t(), h) if s else torch.mm(z.t(), h, out=ctx.grad_weight)  # (V, C)
                    continue
                g = buf_low[: e - s].copy_(z)                                 # rounded to `low` for its products
                if grad_h:
                    ctx.grad_hidden[s:e] = torch.mm(g, w)
                if grad_w:
                    gw = torch.mm(g.t(), h, out=kept(head, "_head_grad_low", weight.shape, weight, low))
                    add_in_blocks(ctx.grad_weight, gw) if s else ctx.grad_weight.copy_(gw)
        ctx.head, ctx.used = head, False
        return (losses * counted).sum() / count

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        if ctx.grad_weight is not None:   # into .grad directly: a buffer kept across steps, or added in place
            head, weight, partial = ctx.head, ctx.head.weight, ctx.grad_weight
            if ctx.used:
                raise RuntimeError("linear_cross_entropy's backward runs once per forward pass: its weight "
                                   "gradient has become .grad (retain_graph=True is not supported)")
            ctx.used = True
            if not (grad_loss.device.type == "cpu" and grad_loss.item() == 1.0):   # `loss.backward()`: 1
                partial.mul_(grad_loss)       # (a sync on a GPU is not worth saving one pass there)
            if weight.grad is not None:
                weight.grad.add_(partial)
            else:
                # The scaled partial gradient becomes .grad as it is, saving a pass over the (V, C) weight.
                weight.grad = partial
                if head.__dict__.get("_head_grad_partial") is partial:   # the kept one (see _partial_buffer):
                    # the buffer .grad had before takes its place for the next forward pass, so they never alias
                    before = head.__dict__.pop("_weight_grad", None)
                    head.__dict__["_weight_grad"] = partial
                    if before is None:
                        del head.__dict__["_head_grad_partial"]  # the next forward pass makes a new one
                    else:
                        head.__dict__["_head_grad_partial"] = before
        grad_hidden = None if ctx.grad_hidden is None else ctx.grad_hidden * grad_loss
        return grad_hidden, None, None, None, None, None, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, head: nn.Linear, targets: torch.Tensor, chunk: int = 128,
                         ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Mean cross-entropy of `head(hidden)` (hidden (N, C), a bias-free fp32 `nn.Linear` head) against
    `targets` (N,), without the (N, V) logits; the head's weight gradient goes into `.grad` directly (a
    buffer the head keeps across steps). Needs `.backward()` and no DDP. Under bf16 autocast the head's
    products run in bf16 and the softmax in fp32; fp16 autocast is refused (its gradients of the logits,
    about 1 / N each, would underflow: a loss scaler scales the loss only after this function)."""
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(f"expected hidden (N, C) and targets (N,), got {tuple(hidden.shape)} and {tuple(targets.shape)}")
    low = torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(hidden.device.type) else None
    if low not in (None, torch.bfloat16):
        raise ValueError(f"linear_cross_entropy runs in fp32 or under bf16 autocast, not under {low} autocast")
    if head.bias is not None or hidden.dtype != torch.float32 or head.weight.dtype != torch.float32:
        raise ValueError("linear_cross_entropy takes fp32 hidden states and a bias-free fp32 head")
    grads = torch.is_grad_enabled()   # without gradients (evaluation) only the loss is computed
    return _LinearCrossEntropy.apply(hidden, head.weight, targets, head, chunk, ignore_index,
                                     grads and hidden.requires_grad, grads and head.weight.requires_grad, low)
