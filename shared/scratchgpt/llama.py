"""A modern decoder: GPT with Llama's four changes (RMSNorm, RoPE, SwiGLU, grouped-query attention).

Built piece by piece in notebook 11 (`stage4_beyond/11_modern_decoder.ipynb`). The configuration's
fields and the parameter names are those of Hugging Face's `LlamaConfig` / `LlamaForCausalLM`
(`model.layers.0.self_attn.q_proj.weight`, ...), so a Llama checkpoint's `state_dict` loads by name.
`tests/test_llama.py` checks the logits against `transformers` within 1e-4, for the plain rotation and
for a Llama-3.2-shaped configuration (Llama 3's `rope_scaling`, a `head_dim` set on its own); a
`rope_scaling` of another kind (linear, dynamic, yarn, ...) is refused rather than computed wrongly.

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

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, LayerCache
from .config import GPTConfig, check_sizes


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
    # width of one head; None: hidden_size / num_attention_heads. Llama 3.2 3B, for one, sets it itself
    head_dim: int | None = None
    # None, or Hugging Face's `rope_scaling` of a Llama 3.1 / 3.2 checkpoint: {"rope_type": "llama3",
    # "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"} (see
    # `rope_frequencies`). Not hashed: a dict is not hashable.
    rope_scaling: dict | None = field(default=None, hash=False)

    def __post_init__(self):
        check_sizes(self, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads", "max_position_embeddings")
        if self.head_dim is None:
            if self.hidden_size % self.num_attention_heads:
                raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                                 f"num_attention_heads={self.num_attention_heads}; "
                                 "or give head_dim explicitly")
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        check_sizes(self, "head_dim")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                             f"num_key_value_heads={self.num_key_value_heads}: "
                             "each key/value head must serve a whole group of query heads")
        if self.head_dim % 2:
            raise ValueError(f"RoPE rotates pairs of dimensions: the head size must be even, "
                             f"got {self.head_dim}")
        for name in ("rope_theta", "rms_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"LlamaConfig: {name} must be a positive number, got {value!r}")
        check_rope_scaling(self.rope_scaling)

    @property
    def context_length(self) -> int:  # the name the rest of the package (generate, ...) uses
        return self.max_position_embeddings

    def with_(self, **changes) -> LlamaConfig:
        """A copy with some fields changed. A head_dim that was derived from the width and the heads is
        derived again from the new ones (dataclasses.replace would keep the old number)."""
        if "head_dim" not in changes and self.head_dim * self.num_attention_heads == self.hidden_size:
            changes["head_dim"] = None
        return replace(self, **changes)

    @classmethod
    def like_gpt(cls, cfg: GPTConfig, num_key_value_heads: int | None = None, **changes) -> LlamaConfig:
        """The modern counterpart of a GPT configuration at equal width, depth and heads: SwiGLU's inner
        width 8/3·d (rounded up to a multiple of 8) so the feed-forward has GPT-2's parameter count,
        and by default a quarter as many key/value heads (at least 1; the largest divisor of the heads
        up to that). A `num_key_value_heads` given is used as it is, and refused if it does not divide
        the heads."""
        kv = num_key_value_heads
        if kv is None:
            kv = max(1, cfg.n_head // 4)
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


ROPE_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def check_rope_scaling(scaling: dict | None) -> None:
    """A clear error for a `rope_scaling` this module does not compute: anything but None, rope_type
    "default" or a complete rope_type "llama3" (Llama 3.1 / 3.2). A checkpoint with another kind (linear,
    dynamic, yarn, ...) would load by name and give wrong logits without a word."""
    if scaling is None:
        return
    if not isinstance(scaling, dict):
        raise ValueError(f"rope_scaling must be None or a dict, got {type(scaling).__name__}")
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "default":
        return
    if kind != "llama3":
        raise ValueError(f"rope_scaling of rope_type {kind!r} is not supported: only 'llama3' "
                         "(Llama 3.1 / 3.2) and 'default'")
    missing = [k for k in ROPE_SCALING_KEYS if k not in scaling]
    if missing:
        raise ValueError(f"rope_scaling 'llama3' needs {', '.join(missing)}")
    bad = [k for k in ROPE_SCALING_KEYS if isinstance(scaling[k], bool)
           or not isinstance(scaling[k], (int, float)) or not 0 < scaling[k] < math.inf]
    if bad:
        raise ValueError(f"rope_scaling 'llama3': {', '.join(bad)} must be positive numbers")
    if scaling["high_freq_factor"] <= scaling["low_freq_factor"]:
        raise ValueError("rope_scaling 'llama3': high_freq_factor must be larger than low_freq_factor, got "
                         f"{scaling['high_freq_factor']} and {scaling['low_freq_factor']}")


def rope_frequencies(head_dim: int, theta: float = 10000.0, scaling: dict | None = None,
                     device=None) -> torch.Tensor:
    """The rotation frequency of each dimension pair, (head_dim/2,): pair i turns at theta^(-2i/head_dim).

    With Llama 3's scaling (rope_type "llama3", Meta's `apply_scaling`): a pair whose wavelength
    2π/frequency is shorter than original_max_position_embeddings / high_freq_factor keeps its
    frequency; one longer than original_max_position_embeddings / low_freq_factor is slowed by
    `factor`, so that it does not wrap around within the longer context; the ones between blend the
    two smoothly."""
    freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    if scaling is None or scaling.get("rope_type", scaling.get("type")) == "default":
        return freq
    check_rope_scaling(scaling)
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context = scaling["original_max_position_embeddings"]
    wavelength = 2 * math.pi / freq
    smooth = (old_context / wavelength - low) / (high - low)              # 0 at the long end, 1 at the short
    blended = (1 - smooth) * freq / factor + smooth * freq
    return torch.where(wavelength < old_context / high, freq,
                       torch.where(wavelength > old_context / low, freq / factor, blended))


def rope_angles(head_dim: int, positions: torch.Tensor, theta: float = 10000.0,
                scaling: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotation angles, (T, head_dim) each, for the given positions.

    Dimension pair i turns at frequency theta^(-2i/head_dim) (`rope_frequencies`, which also applies
    Llama 3's `scaling`): fast for the first pairs, slow for the last. Pair i is
    (x[i], x[i + head_dim/2]), Hugging Face's layout (not adjacent dimensions)."""
    inv_freq = rope_frequencies(head_dim, theta, scaling, positions.device)
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
        B, T, _ = x.shape
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
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


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
        cfg = self.config
        cos, sin = rope_angles(cfg.head_dim, positions, cfg.rope_theta, cfg.rope_scaling)
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
