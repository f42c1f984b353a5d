"""Text generation: the autoregressive loop and the decoding strategies.

Each step runs the model on the text so far (cropped to the context length), takes the logits of
the last position, and picks the next token: the most likely one (greedy, `temperature=0`), or a
sample from the softmax of `logits / temperature`, optionally limited to the `top_k` most likely
tokens and/or the smallest set whose probabilities add up to `top_p` (nucleus sampling).
"""

from __future__ import annotations

import torch

from .llama import Llama
from .model import GPT


def filter_logits(logits: torch.Tensor, top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """Set the logits outside the top-k / top-p set to -inf. logits: (B, V)."""
    if top_k is not None:
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]     # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None:
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach top_p (the first is always kept)
        drop_sorted = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def logits_finite(logits: torch.Tensor) -> bool:
    """Whether every logit is finite. One float64 sum instead of `isfinite(logits).all()`, which builds
    three (B, V) temporaries per generated token: a NaN or an inf makes the sum NaN or inf, and float64
    cannot overflow on fp32 values."""
    return bool(torch.isfinite(logits.sum(dtype=torch.float64)))


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend `idx` (B, T) by up to `max_new_tokens` tokens; returns (B, T + new).

    A prompt longer than the model's context is cropped to its last `context_length` tokens for
    each step (the returned tensor keeps the whole prompt). `temperature=0` is greedy decoding.
    Generation stops early when every sequence has produced `eos_id`.

    `use_cache=True` keeps a key/value cache (if the model offers one): the prompt is encoded once,
    then each step feeds only the newest token. Once the text outgrows the context, positions shift
    under the cached keys, so each further step re-encodes the last `context_length` tokens, exactly
    as the uncached path does: both give the same tokens.
    """
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"the prompt must be a (batch, tokens) tensor with at least one token, got shape "
                         f"{tuple(idx.shape)}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens}")
    context = model.config.context_length
    was_training = model.training
    model.eval()
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    cache = model.new_cache() if use_cache and hasattr(model, "new_cache") else None
    # our models can skip the output head for all but the last position; any other model gives all of them
    head = {"last_only": True} if isinstance(model, (GPT, Llama)) else {}
    plain_head = type(getattr(model, "lm_head", None)) is torch.nn.Linear and model.lm_head.bias is None
    if head and idx.device.type == "cpu" and plain_head:
        # a (V, C) weight times a few rows runs far below memory speed on CPUs (measured 6.6 GB/s for the
        # tiny model's head, 10 for GPT-2's); its transpose, copied once per call, at 31 and 16 GB/s.
        # (A wrapped head, e.g. with LoRA, keeps its own forward.)
        head["head_t"] = model.lm_head.weight.detach().t().contiguous()                # (C, V)
    for _ in range(max_new_tokens):
        if cache is None:
            logits = model(idx[:, -context:], **head)[:, -1, :]            # (B, V), last position only
        elif cache.length == 0 or idx.size(1) > context:
            cache = model.new_cache()                                      # (re-)encode the visible text
            logits = model(idx[:, -context:], cache, **head)[:, -1, :]
        else:
            logits = model(idx[:, -1:], cache, **head)[:, -1, :]           # only the newest token
        if not logits_finite(logits):
            # argmax of NaNs is token 0 ('!'): say what is wrong instead of printing '!!!!!'
            raise ValueError("the model's logits are not finite (NaN or inf): its weights are broken "
                             "(a diverged training run?), so there is nothing sensible to generate")
        if temperature == 0.0:
            next_id = logits.argmax(dim=-1, keepdim=True)                   # (B, 1)
        else:
            logits = filter_logits(logits / temperature, top_k, top_p)
            next_id = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)
        if eos_id is not None:
            next_id = next_id.masked_fill(finished.unsqueeze(1), eos_id)    # finished rows just pad
            finished |= next_id.squeeze(1) == eos_id
        idx = torch.cat([idx, next_id], dim=1)
        if eos_id is not None and finished.all():
            break
    model.train(was_training)
    return idx


def generate_text(model, prompt: str, max_new_tokens: int = 20, tokenizer=None, **kwargs) -> str:
    """Convenience: text in, text out (prompt included), with GPT-2's tokenizer."""
    from .tokenizer import ids_to_text, text_to_ids

    device = next(model.parameters()).device
    if not prompt:
        raise ValueError("the prompt is empty: give at least one token of text")
    ids = generate(model, text_to_ids(prompt, tokenizer).to(device), max_new_tokens, **kwargs)
    return ids_to_text(ids[0], tokenizer)
