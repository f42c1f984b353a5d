"""The GPT model: GPT-2's architecture in plain PyTorch.

Built piece by piece in notebook 03 (`stage2_gpt_pretraining/03_gpt_model.ipynb`). Parameter names
are those of GPT-2's checkpoints (`transformer.h.0.attn.c_attn.weight`, ...), so OpenAI's weights load
by name (see `gpt2_weights.py`).
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import nn

from .attention import KVCache, LayerCache, MultiHeadAttention
from .chunked_loss import linear_cross_entropy
from .config import GPTConfig
from .grad_buffers import linear


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
        # The trainer and the benchmark switch these on (see `token_embeddings`, `grad_buffers`); off,
        # the plain path.
        self.tied_grad_in_place = False
        self._grad_buffers = False
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

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None, last_only: bool = False,
                head_t: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over the vocabulary for every position: (B, T) token ids -> (B, T, vocab_size).

        With a `kv_cache`, `idx` holds only the new tokens; they continue the cached ones.
        `last_only=True` returns the last position's logits only, (B, 1, vocab_size): generation needs
        no more, and the output head is a large share of the work (V·d of GPT-2's 124M parameters).
        `head_t`: the head's weight transposed and contiguous, (C, V), to use instead of `lm_head`
        (`generate` passes one; the same product, faster for a row or a few on CPUs).
        """
        self._check_ids(idx, 0 if kv_cache is None else kv_cache.length)
        x = self.hidden(idx, kv_cache, last_only)                                          # (B, T, C)
        return self.lm_head(x) if head_t is None else x @ head_t                           # (B, T, V)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the next-token predictions, `F.cross_entropy(self(idx), targets)`, with
        the head and the loss computed together 512 rows at a time (`linear_cross_entropy`): no
        (B·T, V) logits. fp32 or bf16 autocast (the head's products in bf16, the softmax in fp32), and
        `.backward()` only (the head's gradient goes straight into `.grad`); the command-line trainer's path."""
        self._check_ids(idx, 0)
        return linear_cross_entropy(self.hidden(idx).flatten(0, 1), self.lm_head, targets.flatten(), chunk=512)

    def _check_ids(self, idx: torch.Tensor, start: int) -> None:
        T = idx.size(1)
        if start + T > self.config.context_length:
            raise ValueError(f"sequence of {start + T} tokens is longer than the context length "
                             f"{self.config.context_length}; crop it (generate() keeps the last tokens)")
        if idx.device.type != "meta" and idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}); got "
                             f"min {idx.min().item()}, max {idx.max().item()}")

    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None, last_only: bool = False) -> torch.Tensor:
        """The final-normed vectors the output head reads, (B, T, C): `forward` without the head. A loss
        that needs few positions' logits (DPO scores the response tokens only) applies `lm_head` to those."""
        start = 0 if kv_cache is None else kv_cache.length
        pos = torch.arange(start, start + idx.size(1), device=idx.device)
        x = self.transformer.drop(self.token_embeddings(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.transformer.h):
            x = block(x, None if kv_cache is None else kv_cache.layers[i])
        if last_only:
            x = x[:, -1:, :]                                                              # (B, 1, C)
        return self.transformer.ln_f(x)

    def token_embeddings(self, idx: torch.Tensor) -> torch.Tensor:
        """The token embedding of `idx`, (B, T) -> (B, T, C).

        With tied weights the embedding matrix gets two gradients, one from the output head and one
        from this lookup, each a dense (V, C) tensor (154 MB for GPT-2 124M), and autograd adds them
        into a third. Each is freshly allocated memory, so every training step faults in hundreds of
        megabytes of new pages: on a 2-core CPU about a seventh of GPT-2 124M's fp32 step. With
        `tied_grad_in_place` the lookup's gradient instead goes row by row into `weight.grad`
        (`index_add_`, only the B·T rows used), with no (V, C) temporary. The sum is the same up to
        float rounding. It needs `.backward()` filling `.grad`, not `torch.autograd.grad`, and no
        DistributedDataParallel, which reads `.grad` before the rows arrive; the trainer sets it only
        for a single process without torch.compile.
        """
        wte = self.transformer.wte
        if not (self.tied_grad_in_place and self.config.tie_weights and torch.is_grad_enabled()
                and wte.weight.requires_grad):
            return wte(idx)
        weight, rows = wte.weight, idx.reshape(-1)
        x = nn.functional.embedding(idx, weight.detach()).requires_grad_()   # no autograd edge to `weight`

        def add_rows(grad: torch.Tensor) -> None:   # the head's gradient may arrive before or after
            if weight.grad is None:
                weight.grad = torch.zeros_like(weight)
            weight.grad.index_add_(0, rows, grad.reshape(-1, grad.size(-1)).to(weight.grad.dtype))

        x.register_hook(add_rows)
        return x

    @property
    def grad_buffers(self) -> bool:
        """Whether every linear layer keeps its weight's gradient (and bf16 copy) in buffers across
        steps (`grad_buffers.linear`): the same gradients, without faulting in 500 MB of fresh memory
        per step for GPT-2 124M. Needs `.backward()` and no DistributedDataParallel, as
        `tied_grad_in_place`."""
        return self._grad_buffers

    @grad_buffers.setter
    def grad_buffers(self, on: bool) -> None:
        for module in self.modules():
            if type(module) is nn.Linear:   # its forward, for this instance only
                if on:
                    module.forward = partial(linear, module)   # a frozen weight (LoRA) takes the plain path
                else:
                    module.__dict__.pop("forward", None)
        self._grad_buffers = bool(on)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layer)

    def num_parameters(self, include_position_embedding: bool = True) -> int:
        """Distinct parameters (a tied head counts once)."""
        n = sum(p.numel() for p in self.parameters())
        return n if include_position_embedding else n - self.transformer.wpe.weight.numel()
