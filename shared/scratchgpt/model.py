"""The GPT model: GPT-2's architecture in plain PyTorch.

Built piece by piece in notebook 03 (`stage2_gpt_pretraining/03_gpt_model.ipynb`). Parameter names
are those of GPT-2's checkpoints (`transformer.h.0.attn.c_attn.weight`, ...), so OpenAI's weights load
by name (see `gpt2_weights.py`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .attention import KVCache, LayerCache, MultiHeadAttention
from .config import GPTConfig


class MLP(nn.Module):
    """The feed-forward block: widen to 4·d, GELU, back to d. Applied to each position separately."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.gelu = nn.GELU(approximate="tanh")  # GPT-2 was trained with the tanh approximation
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """A transformer block: attention then MLP, each with a pre-norm and a shortcut connection."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = MultiHeadAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, kv_cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache)  # shortcuts let gradients flow straight through deep stacks
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    """Token and position embeddings, dropout, `n_layer` blocks, a final norm, and the output head."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.context_length, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:
            # one matrix maps ids to vectors and vectors back to scores over ids (saves V·d parameters)
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                # GPT-2: scale the residual projections so the residual stream's variance stays
                # constant as blocks are added (two residual branches per block)
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None,
                last_only: bool = False) -> torch.Tensor:
        """Logits over the vocabulary for every position: (B, T) token ids -> (B, T, vocab_size).

        With a `kv_cache`, `idx` holds only the new tokens; they continue the cached ones.
        `last_only=True` returns the last position's logits only, (B, 1, vocab_size): generation needs
        no more, and the output head is a large share of the work (V·d of GPT-2's 124M parameters).
        """
        return self.lm_head(self.hidden(idx, kv_cache, last_only))                         # (B, T, V)

    def _check_ids(self, idx: torch.Tensor, start: int) -> None:
        T = idx.size(1)
        if start + T > self.config.context_length:
            raise ValueError(f"sequence of {start + T} tokens is longer than the context length "
                             f"{self.config.context_length}; crop it (generate() keeps the last tokens)")
        V = self.config.vocab_size
        if idx.device.type != "meta" and idx.numel() and (idx.min() < 0 or idx.max() >= V):
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}); got "
                             f"min {idx.min().item()}, max {idx.max().item()}")

    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None,
               last_only: bool = False) -> torch.Tensor:
        """The final-normed vectors the output head reads, (B, T, C): `forward` without the head. A loss
        that needs few positions' logits (DPO scores the response tokens only) applies `lm_head` to those."""
        start = 0 if kv_cache is None else kv_cache.length
        self._check_ids(idx, start)
        pos = torch.arange(start, start + idx.size(1), device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if kv_cache is None else kv_cache.layers[i])
        if last_only:
            x = x[:, -1:, :]                                                              # (B, 1, C)
        return self.transformer.ln_f(x)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layer)

    def num_parameters(self, include_position_embedding: bool = True) -> int:
        """Distinct parameters (a tied head counts once)."""
        n = sum(p.numel() for p in self.parameters())
        return n if include_position_embedding else n - self.transformer.wpe.weight.numel()
