"""Linear layers whose weight gradients (and bf16 weight copies) live in buffers kept across steps.

A training step of GPT-2 124M makes 500 MB of weight gradients. Autograd allocates them afresh at
every step, and freed again after the optimizer's step; blocks this large go back to the operating
system, so every step faults in the same amount of new pages. On a 2-core CPU that made the weight
gradients' matrix products run at a third of their speed (a [3072 x 512] @ [512 x 768] product: 18 ms
in the step, 6 ms on memory already in use). Under bf16 autocast it is worse: each step also casts
every weight to a new bf16 tensor and each bf16 gradient back to a new fp32 one.

`linear(module, x)` computes `module(x)`, the same product, but:
- the weight's gradient is written by the matrix product itself into a buffer the module keeps
  (`torch.mm(..., out=buffer)`), which becomes `weight.grad`; a second backward before the optimizer
  step (gradient accumulation) adds into it in place (`addmm_`);
- under autocast, the bf16 copy of the weight is written into a kept buffer too, and so is the bf16
  gradient before it is added into the fp32 one.

`weight.grad` ends up as autograd's would, to float rounding (tested against it in
`tests/test_grad_buffers.py`). It needs `.backward()` (the gradient goes to `.grad`, not through
autograd), and no DistributedDataParallel (whose hooks wait for autograd to deliver each gradient):
the command-line trainer switches it on for one process without torch.compile (`GPT.grad_buffers`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kept(module: nn.Module, name: str, shape: tuple[int, ...], like: torch.Tensor,
         dtype: torch.dtype | None = None) -> torch.Tensor:
    """The module's buffer `name` of this shape, with `like`'s device and dtype (or `dtype`), made once
    and kept across steps (an attribute outside the state dict, so checkpoints do not change)."""
    dtype = dtype or like.dtype
    buf = module.__dict__.get(name)
    if buf is None or buf.shape != shape or buf.dtype != dtype or buf.device != like.device:
        buf = module.__dict__[name] = torch.empty(shape, dtype=dtype, device=like.device)
    return buf


def add_in_blocks(total: torch.Tensor, part: torch.Tensor, block: int = 1 << 18) -> None:
    """`total += part` for a bf16 `part` and an fp32 `total` of two dimensions, about `block` values at a
    time. PyTorch's mixed-dtype `add_` slows down on large matrices: on a 2-core Xeon, 45 ms for the
    (50257, 768) head, 12 ms in blocks of 2**18 values (fp32 + fp32 takes 10), 1.07 against 0.42 ms
    for a (3072, 768) matrix."""
    rows = max(1, block // max(1, total.size(1)))
    for s in range(0, total.size(0), rows):
        total[s:s + rows].add_(part[s:s + rows])


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, module: nn.Module):
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        w = weight if dtype == weight.dtype else kept(module, "_weight_cast", weight.shape, weight, dtype).copy_(weight)
        x = x.to(dtype)
        with torch.autocast(device, enabled=False):
            y = F.linear(x, w, None if bias is None else bias.to(dtype))
        ctx.save_for_backward(x, w)
        ctx.module, ctx.weight, ctx.has_bias = module, weight, bias is not None
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):
        x, w = ctx.saved_tensors
        weight, module = ctx.weight, ctx.module
        g = grad_y.reshape(-1, grad_y.size(-1))                               # (N, out)
        rows = x.reshape(-1, x.size(-1))                                       # (N, in)
        grad_x = (g @ w).view(*grad_y.shape[:-1], w.size(1))                   # (..., in)
        if g.dtype == weight.dtype:                                            # fp32: straight into .grad
            if weight.grad is None:
                weight.grad = torch.mm(g.t(), rows, out=kept(module, "_weight_grad", weight.shape, weight))
            else:
                weight.grad.addmm_(g.t(), rows)
        else:                                                                  # bf16 product, fp32 .grad
            low = torch.mm(g.t(), rows, out=kept(module, "_weight_grad_low", weight.shape, weight, g.dtype))
            if weight.grad is None:
                weight.grad = kept(module, "_weight_grad", weight.shape, weight).copy_(low)
            else:
                add_in_blocks(weight.grad, low)
        grad_bias = g.sum(0).to(weight.dtype) if ctx.has_bias else None
        return grad_x, None, grad_bias, None


def linear(module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """`module(x)` with the weight's gradient (and bf16 copy) in kept buffers, see the module's doc.
    Without gradients to compute (inference, a frozen weight) it is `nn.Linear.forward` itself."""
    if not (torch.is_grad_enabled() and module.weight.requires_grad):
        return nn.Linear.forward(module, x)
    return _Linear.apply(x, module.weight, module.bias, module)
