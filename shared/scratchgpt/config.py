"""The GPT model's configuration, GPT-2's published sizes, and the parameter and FLOP counts by formula.

The count is analytic (no tensors are allocated), so it works for GPT-3's 175 billion parameters
as well as for the tiny profile; `tests/` checks it against the real model's `numel()`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


def check_sizes(cfg, *names: str) -> None:
    """A clear error for a size field of a model configuration that is not a whole number >= 1: zero
    heads or layers would otherwise end in a ZeroDivisionError or an IndexError far from the cause,
    and a float width in a cryptic error from `nn.Linear`. Shared by `GPTConfig` and `LlamaConfig`."""
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{type(cfg).__name__}: {name} must be a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 50257      # GPT-2's BPE vocabulary
    context_length: int = 1024   # longest sequence the position embedding covers
    n_embd: int = 768            # width d of every token's vector
    n_layer: int = 12            # transformer blocks
    n_head: int = 12             # attention heads per block; n_embd must divide evenly
    dropout: float = 0.0         # on embeddings, attention weights and residual branches
    bias: bool = True            # GPT-2 has biases in every Linear and LayerNorm
    tie_weights: bool = True     # GPT-2 reuses the token embedding as the output head

    def __post_init__(self):
        check_sizes(self, "vocab_size", "context_length", "n_embd", "n_layer", "n_head")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")

    def with_(self, **changes) -> GPTConfig:
        """A copy with some fields changed, e.g. `cfg.with_(dropout=0.0)`."""
        return replace(self, **changes)


# OpenAI's four GPT-2 releases; they differ only in width, depth and heads.
GPT2_SIZES = {
    "124M": GPTConfig(n_embd=768, n_layer=12, n_head=12),
    "355M": GPTConfig(n_embd=1024, n_layer=24, n_head=16),
    "774M": GPTConfig(n_embd=1280, n_layer=36, n_head=20),
    "1558M": GPTConfig(n_embd=1600, n_layer=48, n_head=25),
}
# Hugging Face repository names of the same models.
GPT2_HF_NAMES = {"124M": "gpt2", "355M": "gpt2-medium", "774M": "gpt2-large", "1558M": "gpt2-xl"}

# GPT-3 175B (Brown et al. 2020, table 2.1): 96 layers, width 12288, 96 heads, context 2048.
GPT3_175B = GPTConfig(context_length=2048, n_embd=12288, n_layer=96, n_head=96)


def count_parameters(cfg: GPTConfig) -> dict[str, int]:
    """Parameters of a GPT with this configuration, by part, and their total."""
    d, b = cfg.n_embd, int(cfg.bias)
    layer_norm = 2 * d if cfg.bias else d                    # scale and shift
    attention = d * 3 * d + 3 * d * b + d * d + d * b        # c_attn (q, k, v) and c_proj
    mlp = d * 4 * d + 4 * d * b + 4 * d * d + d * b          # c_fc (d -> 4d) and c_proj (4d -> d)
    block = 2 * layer_norm + attention + mlp
    parts = {
        "token_embedding": cfg.vocab_size * d,
        "position_embedding": cfg.context_length * d,
        "blocks": cfg.n_layer * block,
        "final_norm": layer_norm,
        "output_head": 0 if cfg.tie_weights else cfg.vocab_size * d,
    }
    parts["total"] = sum(parts.values())
    return parts


def training_flops(n_params: float, n_tokens: float) -> float:
    """Approximate training compute: 6 FLOPs per parameter per token (2 forward, 4 backward)."""
    return 6.0 * n_params * n_tokens


def flops_per_token(cfg: GPTConfig, T: int) -> float:
    """Training FLOPs per token as the usual reference GPT code counts them, 6·N + 12·L·d·T: N the
    non-embedding parameters plus the output head (its product is real work even when its weight is
    tied to the embedding), L the layers, d the width, T the context (attention's products)."""
    d, L = cfg.n_embd, cfg.n_layer
    non_embedding = L * (12 * d * d + 13 * d) + 2 * d
    return 6 * (non_embedding + cfg.vocab_size * d) + 12 * L * d * T


def config_of(path: str | Path) -> GPTConfig:
    """The GPT configuration of a GPT-2-format `model.safetensors`, read from its tensor shapes
    (heads: 64 per head, as every GPT-2 size has)."""
    from safetensors import safe_open  # only this function needs it

    with safe_open(str(path), framework="pt") as f:
        shapes = {k.removeprefix("transformer."): f.get_slice(k).get_shape() for k in f.keys()}
    vocab, n_embd = shapes["wte.weight"]
    layers = {int(k.split(".")[1]) for k in shapes if k.startswith("h.")}
    return GPTConfig(vocab_size=vocab, context_length=shapes["wpe.weight"][0], n_embd=n_embd,
                     n_layer=len(layers), n_head=max(1, n_embd // 64), dropout=0.0)
