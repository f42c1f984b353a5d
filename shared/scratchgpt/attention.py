"""Causal multi-head self-attention, the heart of the GPT block.

Built step by step in notebook 02 (`stage1_data_and_attention/02_attention.ipynb`); this is the
version every later notebook uses. Parameter names follow GPT-2's checkpoints: one `c_attn` Linear
makes queries, keys and values for all heads at once, `c_proj` mixes the heads' outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import GPTConfig

# The longest context for which bf16 attention on a CPU is spelled out rather than fused (measured,
# see `MultiHeadAttention._spelled_causal_attention`).
SPELLED_BF16_MAX_T = 512


class MultiHeadAttention(nn.Module):
    """Causal self-attention with `n_head` heads of size `n_embd // n_head`.

    `fast=True` computes attention with `torch.nn.functional.scaled_dot_product_attention` (one fused
    kernel); `fast=False` spells it out as in the notebook: scores, causal mask, softmax, dropout,
    weighted sum. Both give the same result (tested).
    """

    def __init__(self, cfg: GPTConfig, fast: bool = True):
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.dropout = cfg.dropout
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.fast = fast
        # True above the diagonal: position i may not look at positions j > i
        mask = torch.triu(torch.ones(cfg.context_length, cfg.context_length, dtype=torch.bool), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor, kv_cache: LayerCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)                       # 3 x (B, T, C)
        # split the width into heads: (B, T, C) -> (B, n_head, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)       # keys and values of all tokens so far: (B, n_head, Tk, hd)
        if self.fast:
            y = self._fast_attention(q, k, v)
        else:
            y = self.attention_weights(q, k) @ v                       # (B, n_head, T, head_dim)
        y = y.transpose(1, 2).contiguous().view(B, T, C)               # heads side by side again
        return self.resid_dropout(self.c_proj(y))

    def _fast_attention(self, q, k, v):
        Tq, Tk = q.size(-2), k.size(-2)
        dropout = self.dropout if self.training else 0.0
        if Tq == Tk and q.dtype == torch.bfloat16 and q.device.type == "cpu" and Tq <= SPELLED_BF16_MAX_T:
            return self._spelled_causal_attention(q, k, v, dropout)
        if Tq == Tk:       # no cache, or the cache's first fill: plain causal attention
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        if Tq == 1:        # one new token: it may see every cached token
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        allowed = ~self.mask[Tk - Tq : Tk, :Tk]                         # new tokens sit at the end
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)

    def _spelled_causal_attention(self, q, k, v, dropout: float):
        """Causal attention in three plain bf16 steps (scores, softmax, weighted sum), for a CPU.

        The same steps as `attention_weights(q, k) @ v`, the teaching path, with two changes for speed:
        the scale applied to q (T x head_dim values) rather than to the scores (T x T), and the mask
        applied outside autograd (below).

        Why: PyTorch's fused CPU kernel is slower in bf16 than in fp32, and slower than these steps
        for short contexts (PERFORMANCE.md has the figures); the (T, T) scores kept for the backward
        pass grow with T², so above `SPELLED_BF16_MAX_T` the fused kernel runs.
        """
        Tq = q.size(-2)
        scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)    # (B, n_head, T, T)
        # The mask needs no backward pass: softmax's gradient is already zero wherever its output
        # is, so hiding it from autograd saves a (B, n_head, T, T) copy per layer and changes nothing.
        with torch.no_grad():
            scores.masked_fill_(self.mask[:Tq, :Tq], float("-inf"))
        weights = F.dropout(torch.softmax(scores, dim=-1), dropout)           # bf16 out, fp32 inside
        return weights @ v                                                     # (B, n_head, T, head_dim)

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Softmax of the masked, scaled scores q·k / sqrt(head_dim), with dropout: (B, n_head, Tq, Tk).

        The queries are the last Tq of the Tk positions (Tq == Tk without a key/value cache).
        """
        Tq, Tk = q.size(-2), k.size(-2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)    # (B, n_head, Tq, Tk)
        scores = scores.masked_fill(self.mask[Tk - Tq : Tk, :Tk], float("-inf"))  # softmax: -inf -> 0
        return self.attn_dropout(torch.softmax(scores, dim=-1))


class LayerCache:
    """One layer's cached keys and values, (B, n_head, T, head_dim) each, growing as tokens arrive."""

    def __init__(self):
        self.k = self.v = None

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k, self.v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        return self.k, self.v


class KVCache:
    """Keys and values of every layer for the tokens seen so far, so generation need not recompute them.

    Without a cache, each generated token re-runs the model over the whole text; with it, only the new
    token passes through the model and attends to the stored keys and values. The cache holds at
    most `context_length` positions; `generate` starts it afresh when the text outgrows the context.
    """

    def __init__(self, n_layer: int):
        self.layers = [LayerCache() for _ in range(n_layer)]

    @property
    def length(self) -> int:
        k = self.layers[0].k
        return 0 if k is None else k.size(2)


def kv_cache_bytes(n_layer: int, n_kv_heads: int, head_dim: int, tokens: int, batch: int = 1,
                   bytes_per_value: int = 4) -> int:
    """Memory of a full key/value cache: layers x 2 (keys and values) x heads x head size x tokens x bytes.

    It grows linearly with the tokens (and the batch), and does not depend on the vocabulary or the MLP:
    at long contexts it, not the weights, limits how many sequences fit in memory."""
    return n_layer * 2 * n_kv_heads * head_dim * tokens * batch * bytes_per_value
