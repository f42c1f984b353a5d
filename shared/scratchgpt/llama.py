"""A modern decoder: GPT with Llama's four changes (RMSNorm, RoPE, SwiGLU, grouped-query attention).

Built piece by piece in notebook 10 (`stage4_beyond/10_modern_decoder.ipynb`). The configuration's
fields and the parameter names are those of Hugging Face's `LlamaConfig` / `LlamaForCausalLM`
(`model.layers.0.self_attn.q_proj.weight`, ...), so a Llama checkpoint's `state_dict` loads by name;
`tests/test_llama.py` checks the logits against `transformers` within 1e-4.

What changes against GPT-2 (`model.py`), and why:
- RMSNorm instead of LayerNorm: scale only, no mean subtraction and no shift (cheaper, as good).
- Rotary position embeddings (RoPE) instead of a learned position table: queries and keys are
  rotated by an angle proportional to their position, so q·k depends on the distance between tokens.
- SwiGLU feed-forward: down(silu(gate(x)) * up(x)), three matrices instead of two.
- Grouped-query attention (GQA): fewer key/value heads than query heads; each K/V head serves a group
  of query heads, which shrinks the KV cache by that factor.
- No biases anywhere, and (in Llama 2 and later) an output head separate from the token embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, LayerCache
from .config import GPTConfig


@dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 50257
    hidden_size: int = 768              # width d (GPT-2: n_embd)
    intermediate_size: int = 2048       # SwiGLU's inner width; about 8/3·d keeps GPT-2's MLP parameter count
    num_hidden_layers: int = 12         # blocks (GPT-2: n_layer)
    num_attention_heads: int = 12       # query heads (GPT-2: n_head)
    num_key_value_heads: int = 4        # key/value heads; a divisor of the query heads (= them: plain MHA)
    max_position_embeddings: int = 1024  # longest sequence (RoPE itself has no table to outgrow)
    rope_theta: float = 10000.0         # base of the rotation frequencies
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads={self.num_key_value_heads}: "
                             "each key/value head must serve a whole group of query heads")
        if (self.hidden_size // self.num_attention_heads) % 2:
            raise ValueError("RoPE rotates pairs of dimensions: the head size must be even")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def context_length(self) -> int:  # the name the rest of the package (generate, ...) uses
        return self.max_position_embeddings

    def with_(self, **changes) -> LlamaConfig:
        return replace(self, **changes)

    @classmethod
    def like_gpt(cls, cfg: GPTConfig, num_key_value_heads: int | None = None, **changes) -> LlamaConfig:
        """The modern counterpart of a GPT configuration at equal width, depth and heads: SwiGLU's inner
        width 8/3·d (rounded up to a multiple of 8) so the feed-forward has GPT-2's parameter count,
        and by default a quarter as many key/value heads (at least 1)."""
        kv = num_key_value_heads or max(1, cfg.n_head // 4)
        while cfg.n_head % kv:
            kv -= 1
        inner = -(-8 * cfg.n_embd // 3 // 8) * 8
        return cls(vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, intermediate_size=inner,
                   num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, num_key_value_heads=kv,
                   max_position_embeddings=cfg.context_length, tie_word_embeddings=cfg.tie_weights, **changes)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x²) + eps) · weight, computed in fp32: LayerNorm without the mean and the shift."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x32.to(x.dtype)


def rope_angles(head_dim: int, positions: torch.Tensor,
                theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, (T, head_dim) each, for the given positions.

    Dimension pair i turns at frequency theta^(-2i/head_dim): fast for the first pairs, slow for the
    last. Pair i is (x[i], x[i + head_dim/2]), Hugging Face's layout (not adjacent dimensions)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=positions.device)
                               / head_dim)
    angles = positions.float()[:, None] * inv_freq[None, :]            # (T, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)                       # (T, head_dim)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each pair (x1, x2) of x (B, heads, T, head_dim) by its angle:
    (x1 cos - x2 sin, x2 cos + x1 sin)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x * cos + rotated * sin).to(x.dtype)


class LlamaAttention(nn.Module):
    """Causal attention with rotary positions and `num_key_value_heads` shared key/value heads."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.n_head, self.n_kv, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_head * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_head * self.head_dim, cfg.hidden_size, bias=False)

    def forward(self, x, cos, sin, kv_cache: LayerCache | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)   # (B, n_head, T, hd)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)     # (B, n_kv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)   # positions enter here, not at the input
        if kv_cache is not None:
            k, v = kv_cache.append(k, v)       # the cache holds n_kv heads only: GQA's memory saving
        group = self.n_head // self.n_kv
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, n_head, Tk, hd)
        Tq, Tk = q.size(2), k.size(2)
        if Tq == Tk:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # new tokens at the end of the cached ones: token i may see keys up to Tk - Tq + i
            allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


class LlamaMLP(nn.Module):
    """SwiGLU: the gate's SiLU decides, per inner unit, how much of the up projection passes."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block as in GPT-2: x + attention(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = LlamaAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = LlamaMLP(cfg)

    def forward(self, x, cos, sin, kv_cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, kv_cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """Token embedding (no position table), `num_hidden_layers` blocks, a final RMSNorm, the output head.

    Same interface as `GPT`: `forward(idx, kv_cache=None, last_only=False)`, `new_cache()`, so
    `generate` and the training loop work unchanged.
    """

    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.config = cfg
        self.model = nn.ModuleDict(dict(
            embed_tokens=nn.Embedding(cfg.vocab_size, cfg.hidden_size),
            layers=nn.ModuleList(LlamaDecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)),
            norm=RMSNorm(cfg.hidden_size, cfg.rms_norm_eps),
        ))
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)   # Llama's initializer_range

    def forward(self, idx: torch.Tensor, kv_cache: KVCache | None = None,
                last_only: bool = False) -> torch.Tensor:
        """(B, T) token ids -> (B, T, vocab_size) logits; with a cache, `idx` continues the cached tokens.
        `last_only` as in `GPT.forward`."""
        _, T = idx.shape
        start = 0 if kv_cache is None else kv_cache.length
        if start + T > self.config.context_length:
            raise ValueError(f"sequence of {start + T} tokens is longer than the context length "
                             f"{self.config.context_length}; crop it (generate() keeps the last tokens)")
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.config.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.config.vocab_size}); got "
                             f"min {idx.min().item()}, max {idx.max().item()}")
        x = self.hidden(idx, kv_cache, last_only)                                          # (B, T, C)
        return self.lm_head(x)                                                             # (B, T, V)

    def hidden(self, idx: torch.Tensor, kv_cache: KVCache | None = None,
               last_only: bool = False) -> torch.Tensor:
        """The final-normed vectors the output head reads, (B, T, C): `forward` without the head."""
        start = 0 if kv_cache is None else kv_cache.length
        positions = torch.arange(start, start + idx.size(1), device=idx.device)
        cos, sin = rope_angles(self.config.head_dim, positions, self.config.rope_theta)
        x = self.model.embed_tokens(idx)                                           # (B, T, C)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, None if kv_cache is None else kv_cache.layers[i])
        if last_only:
            x = x[:, -1:, :]
        return self.model.norm(x)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.num_hidden_layers)

    def num_parameters(self) -> int:
        """Distinct parameters (a tied head counts once)."""
        return sum(p.numel() for p in self.parameters())
