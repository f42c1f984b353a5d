"""LoRA: low-rank adaptation, fine-tuning a small update instead of every weight.

Built in notebook 09 (`stage3_finetuning/09_lora.ipynb`). A frozen weight matrix W (out x in) is
adapted by a product of two thin matrices, W + (alpha / rank) * (A B)^T with A (in x rank) and
B (rank x out): rank * (in + out) trainable numbers instead of in * out. B starts at zero, so a freshly
wrapped model computes exactly what the base model did; training moves only A and B. After training,
the update is merged into W and inference costs nothing extra.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LoRALayer(nn.Module):
    """x -> (alpha / rank) * x A B: the low-rank update alone."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {rank}")
        self.A = nn.Parameter(torch.empty(in_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))     # as nn.Linear initialises its weight
        self.B = nn.Parameter(torch.zeros(rank, out_features))  # zero: training starts from the base model
        self.scaling = alpha / rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scaling * (x @ self.A @ self.B)


class LinearWithLoRA(nn.Module):
    """A frozen `nn.Linear` plus a trainable LoRA update."""

    def __init__(self, linear: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.linear = linear
        self.lora = LoRALayer(linear.in_features, linear.out_features, rank, alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x) + self.lora(x)

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """One `nn.Linear` computing the same function: W + scaling * (A B)^T."""
        out = nn.Linear(self.linear.in_features, self.linear.out_features, bias=self.linear.bias is not None)
        out = out.to(self.linear.weight.device, self.linear.weight.dtype)
        out.weight.copy_(self.linear.weight + self.lora.scaling * (self.lora.A @ self.lora.B).T)
        if self.linear.bias is not None:
            out.bias.copy_(self.linear.bias)
        return out


def apply_lora(model: nn.Module, rank: int = 8, alpha: float = 16,
               keep_trainable: tuple[str, ...] = ()) -> nn.Module:
    """Freeze `model` and wrap every `nn.Linear` with LoRA, in place.

    Modules named in `keep_trainable` (e.g. a new classification head, "lm_head") are not wrapped but
    trained fully.
    """
    for p in model.parameters():
        p.requires_grad = False
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if full in keep_trainable:
                for p in child.parameters():
                    p.requires_grad = True
            elif isinstance(child, nn.Linear):
                setattr(module, child_name, LinearWithLoRA(child, rank, alpha))
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every `LinearWithLoRA` by its merged `nn.Linear`, in place; parameter names are the base
    model's again."""
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LinearWithLoRA):
                setattr(module, child_name, child.merged())
    return model


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
