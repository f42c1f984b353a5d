"""Pretraining: the loss, the training loop, and the learning-rate schedule.

Built step by step in notebook 04 (`stage2_gpt_pretraining/04_pretraining.ipynb`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .progress import approx, progress_bar

# Seconds between progress-bar redraws. In a notebook each redraw is a message from the kernel; nbval
# reads them only after a cell ends, and the messaging layer drops what exceeds 1,000 queued messages,
# the cell's final "idle" among them: a long cell with a fast-redrawing bar then fails as a time-out.
PROGRESS_EVERY_S = 1.0


class NonFiniteError(FloatingPointError):
    """The loss or the gradients are no longer finite numbers: training diverged, or a setting (a
    learning rate of inf, a clipping norm of NaN) made it impossible. Stopping is the only safe move:
    one more update would spread the NaN to every weight."""


def loss_batch(model, inputs: torch.Tensor, targets: torch.Tensor, device=None) -> torch.Tensor:
    """Mean cross-entropy of the next-token predictions of one batch (in fp32, also under autocast)."""
    device = device or next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    logits = model(inputs)                                              # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


def in_order(loader):
    """A copy of the DataLoader `loader` that reads its batches in their stored order, with a random
    generator of its own; anything else (a list of batches) as it is.

    Evaluating on a shuffled loader would draw from its generator and so change which batches training
    sees next; and every pass over a DataLoader without a generator draws a seed from PyTorch's global
    generator, which dropout also uses. Either way, how often one evaluates would change the trained
    weights. Evaluations read this copy instead: the same batches every time, and no random numbers
    taken from training.
    """
    if not isinstance(loader, torch.utils.data.DataLoader):
        return loader
    return torch.utils.data.DataLoader(loader.dataset, batch_size=loader.batch_size,
                                       collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                                       generator=torch.Generator().manual_seed(0))


def set_lr(optimizer, lr: float) -> None:
    """Give every parameter group the learning rate `lr` (the schedule sets it before each step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


def optimizer_step(model, optimizer, grad_clip: float | None, step: int) -> float:
    """Clip the gradients to norm `grad_clip` (None or 0: no clipping), then update the weights.

    Returns the gradient norm before clipping. A norm that is not finite means a NaN or an inf in the
    loss or the gradients: it raises `NonFiniteError` before the update, so the weights (and any
    checkpoint made from them) stay as they were.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    if not torch.isfinite(norm):
        raise NonFiniteError(f"step {step + 1}: the gradient norm is {norm.item()}, not a finite number; "
                             "the loss diverged or a setting is out of range "
                             "(a smaller learning rate usually helps). "
                             "The weights were left as they were after the last good step.")
    if grad_clip:
        # takes the parameters, not their grads
        torch.nn.utils.clip_grads_with_norm_(params, grad_clip, norm)
    optimizer.step()
    return norm.item()


@torch.no_grad()
def loss_loader(model, loader, device=None, num_batches: int | None = None) -> float:
    """Mean loss over the first `num_batches` batches of `loader` (all by default), in eval mode.

    A shuffled loader is read in order (`in_order`): the same batches at every evaluation.
    """
    if len(loader) == 0:
        raise ValueError("the data loader is empty: there is nothing to compute a loss on")
    was_training = model.training
    model.eval()
    n = len(loader) if num_batches is None else min(num_batches, len(loader))
    total = 0.0
    for i, (x, y) in enumerate(in_order(loader)):
        if i == n:
            break
        total += loss_batch(model, x, y, device).item()
    model.train(was_training)
    return total / n


def lr_at(step: int, max_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Linear warmup from 0 to `max_lr` over `warmup_steps`, then cosine decay to `min_lr` at `total_steps`.

    Warmup keeps the first updates small while Adam's moment estimates are still noisy; cosine decay
    lowers the rate smoothly so training settles into a minimum instead of bouncing around it.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model, lr: float, weight_decay: float = 0.1, fused: bool | None = None,
                   **kwargs) -> torch.optim.AdamW:
    """AdamW that decays the weight matrices and embeddings but not biases and norm parameters.

    `fused=True` updates all parameters in one kernel per step (faster; the same results within
    float tolerance); None lets PyTorch choose.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if fused is not None:
        kwargs["fused"] = fused
    return torch.optim.AdamW(groups, lr=lr, **kwargs)


@dataclass
class History:
    """What the training loop records, for printing and plotting."""
    steps: list[int] = field(default_factory=list)
    tokens_seen: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


def train(model, optimizer, train_loader, val_loader, epochs: int, eval_every: int = 10,
          eval_batches: int | None = None, warmup_steps: int = 0, min_lr: float | None = None,
          grad_clip: float | None = 1.0, sample_prompt: str | None = None, sample_tokens: int = 20,
          log=print, progress: bool = True, grad_accum: int = 1,
          amp_dtype: torch.dtype | None = None) -> History:
    """Train for `epochs` passes over `train_loader`, evaluating every `eval_every` steps.

    The learning rate follows `lr_at` (warmup, cosine decay to `min_lr`; a constant rate when
    `warmup_steps=0` and `min_lr` is None); gradients are clipped to norm `grad_clip`. After each
    epoch, a greedy continuation of `sample_prompt` shows what the model has learnt.

    `grad_accum=n` sums the gradients of n loader batches before each optimizer step: the update of a
    batch n times larger, in the memory of one. `amp_dtype=torch.bfloat16` runs the forward pass under
    autocast (matmuls in bf16, reductions in fp32): about twice the speed on GPUs with bf16 units; the
    loss then differs from fp32 at bf16's precision, not float tolerance.
    """
    from .generation import generate_text

    if len(train_loader) == 0:
        raise ValueError("the training loader is empty: there is nothing to train on")
    device = next(model.parameters()).device
    max_lr = optimizer.param_groups[0]["lr"]
    if grad_accum < 1 or len(train_loader) < grad_accum:
        raise ValueError(f"grad_accum must be between 1 and the number of batches ({len(train_loader)}), "
                         f"got {grad_accum}")
    total_steps = epochs * (len(train_loader) // grad_accum)
    history, step, tokens = History(), 0, 0
    bar = progress_bar(total=total_steps, desc="training", disable=not progress, mininterval=PROGRESS_EVERY_S)
    model.train()
    for epoch in range(epochs):
        micro = 0  # a partial accumulation left at an epoch's end is dropped
        for inputs, targets in train_loader:
            if micro == 0:
                lr = max_lr if (warmup_steps == 0 and min_lr is None) else lr_at(
                    step, max_lr, total_steps, warmup_steps, max_lr if min_lr is None else min_lr)
                set_lr(optimizer, lr)
                optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16,
                                enabled=amp_dtype is not None):
                loss = loss_batch(model, inputs, targets, device) / grad_accum
            loss.backward()
            tokens += inputs.numel()
            micro += 1
            if micro < grad_accum:
                continue
            micro = 0
            optimizer_step(model, optimizer, grad_clip, step)
            step += 1
            bar.update(1)
            if step % eval_every == 0 or step == total_steps:
                train_loss = loss_loader(model, train_loader, device, eval_batches)
                val_loss = loss_loader(model, val_loader, device, eval_batches)
                history.steps.append(step)
                history.tokens_seen.append(tokens)
                history.train_loss.append(train_loss)
                history.val_loss.append(val_loss)
                history.lr.append(lr)
                # ~: a figure that varies in its last digits from CPU to CPU (see progress.approx)
                log(f"epoch {epoch + 1} step {step:>4}: train loss {approx(train_loss)}, "
                    f"val loss {approx(val_loss)}")
        if sample_prompt:
            sample = generate_text(model, sample_prompt, sample_tokens).replace("\n", " ")
            history.samples.append(sample)
            log(f"  sample: {sample}")
    bar.close()
    return history


def plot_losses(history: History, ax=None):
    """Training and validation loss against tokens seen (and steps on a second axis)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history.tokens_seen, history.train_loss, label="training loss")
    ax.plot(history.tokens_seen, history.val_loss, linestyle="--", label="validation loss")
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("loss")
    ax.legend()
    top = ax.secondary_xaxis("top", functions=(
        lambda t: t / max(1, history.tokens_seen[0] / history.steps[0]),
        lambda s: s * history.tokens_seen[0] / history.steps[0]))
    top.set_xlabel("steps")
    return ax
