"""Cross-entropy over a large vocabulary, a few rows at a time: the same loss, far less memory traffic.

`F.cross_entropy(logits.float(), targets)` on a batch of 2 x 256 positions of GPT-2's 50,257 tokens
builds four (N, V) tensors of 103 MB each: the fp32 copy of bf16 logits, the log-softmax, the
gradient of the loss with respect to it (zeroed, then one entry per row written), and the gradient
of the logits. Each is freshly allocated, so every step also faults in new pages. On a 2-core Xeon
with AMX that was a fifth of a bf16 training step of GPT-2 124M.

`chunked_cross_entropy` computes the same mean loss from the logits as they are (bf16 or fp32):
- forward: the log-sum-exp of each row, `chunk` rows at a time in one reused fp32 buffer, and the
  target's logit;
  only these two numbers per row are kept;
- backward: the gradient `softmax(row) - one_hot(target)`, scaled by the incoming gradient over the
  number of counted rows, again `chunk` rows at a time, written straight into one tensor of the
  logits' dtype.

Rows whose target is `ignore_index` (-100, as in `F.cross_entropy`) count for nothing, as in
instruction fine-tuning's masked prompts. Tested against `F.cross_entropy` (loss and gradient) in
`tests/test_chunked_loss.py`.
"""

from __future__ import annotations

import torch

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
