"""Text generation: the autoregressive loop and the decoding strategies.

Each step runs the model on the text so far (cropped to the context length), takes the logits of
the last position, and picks the next token: the most likely one (greedy, `temperature=0`), or a
sample from the softmax of `logits / temperature`, optionally limited to the `top_k` most likely
tokens and/or the smallest set whose probabilities add up to `top_p` (nucleus sampling).
"""

from __future__ import annotations

import inspect
import math
import numbers

import torch


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


def check_request(idx: torch.Tensor, max_new_tokens: int, temperature: float, vocab_size: int | None = None,
                  top_k: int | None = None, top_p: float | None = None,
                  eos_id: int | None = None) -> None:
    """Refuse a generation request that cannot give a sensible answer, naming what is wrong: a prompt
    that is not (batch, tokens) integer ids with at least one token, ids outside the vocabulary (-1
    would wrap to the last embedding row), a length that is not a whole number >= 0, a temperature
    that is negative or not a number (a negative one would pick the least likely token), a top-k below
    1 or a top-p outside (0, 1]. Checked before the first step, also where greedy decoding would never
    use top-k or top-p: a bad setting is a mistake either way. `generate` and the fast decoder share it."""
    if not torch.is_tensor(idx) or idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError("the prompt must be a (batch, tokens) tensor with at least one token, got "
                         + (f"shape {tuple(idx.shape)}" if torch.is_tensor(idx) else type(idx).__name__))
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"the prompt must hold integer token ids, got {idx.dtype}")
    if vocab_size is not None and (idx.min() < 0 or idx.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}); "
                         f"got min {idx.min().item()}, max {idx.max().item()}")
    if not _is_number(temperature) or not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    if not _is_whole(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens}")
    if top_k is not None and (not _is_whole(top_k) or top_k < 1):
        raise ValueError(f"top_k must be at least 1 (or None), got {top_k}")
    if top_p is not None and (not _is_number(top_p) or not 0.0 < top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1] (or None), got {top_p}")
    if eos_id is not None and (not _is_whole(eos_id) or eos_id < 0
                               or vocab_size is not None and eos_id >= vocab_size):
        raise ValueError(f"eos_id must be a token id in [0, {vocab_size}) (or None), got {eos_id}")


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)     # numpy's floats too


def _is_whole(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def next_token(logits: torch.Tensor, temperature: float = 0.0, top_k: int | None = None,
               top_p: float | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """The next token of each sequence from its last position's logits (B, V): the most likely one
    (`temperature=0`), else a sample from the softmax of `logits / temperature` over the top-k / top-p set."""
    if not logits_finite(logits):
        # argmax of NaNs is token 0 ('!'): say what is wrong instead of printing '!!!!!'
        raise ValueError("the model's logits are not finite (NaN or inf): its weights are broken "
                         "(a diverged training run?), so there is nothing sensible to generate")
    if temperature == 0.0:
        return logits.argmax(dim=-1, keepdim=True)                                  # (B, 1)
    logits = filter_logits(logits / temperature, top_k, top_p)
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)


def decode(step, idx: torch.Tensor, max_new_tokens: int, context: int, temperature: float = 0.0,
           top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """The autoregressive loop: `step(visible, fresh)` returns the last position's logits (B, V) for the
    visible text (its last `context` tokens); `fresh` says that a cache must start again (the first
    step, or text that outgrew the context), else only the newest token is new.

    Once the text outgrows the context, positions shift under any cached keys, so each further step
    re-encodes the last `context` tokens. Stops early when every sequence has produced `eos_id`."""
    finished = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for i in range(max_new_tokens):
        fresh = i == 0 or idx.size(1) > context
        logits = step(idx[:, -context:], fresh)
        next_id = next_token(logits, temperature, top_k, top_p, generator)
        if eos_id is not None:
            next_id = next_id.masked_fill(finished.unsqueeze(1), eos_id)    # finished rows just pad
            finished |= next_id.squeeze(1) == eos_id
        idx = torch.cat([idx, next_id], dim=1)
        if eos_id is not None and finished.all():
            break
    return idx


@torch.no_grad()
def generate(model, idx: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, eos_id: int | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Extend `idx` (B, T) by up to `max_new_tokens` tokens; returns (B, T + new).

    A prompt longer than the model's context is cropped to its last `context_length` tokens for
    each step (the returned tensor keeps the whole prompt). `temperature=0` is greedy decoding.
    Generation stops early when every sequence has produced `eos_id`.

    `use_cache=True` keeps a key/value cache (if the model offers one): the prompt is encoded once,
    then each step feeds only the newest token. Both paths give the same tokens.
    """
    check_request(idx, max_new_tokens, temperature, getattr(model.config, "vocab_size", None), top_k, top_p,
                  eos_id)
    was_training = model.training
    model.eval()
    cached = use_cache and hasattr(model, "new_cache")
    # our models can skip the output head for all but the last position; any other model gives all of them
    head = {"last_only": True} if "last_only" in inspect.signature(model.forward).parameters else {}
    cache = None

    def step(visible: torch.Tensor, fresh: bool) -> torch.Tensor:
        nonlocal cache
        if not cached:
            return model(visible, **head)[:, -1, :]                      # the whole visible text, every step
        if fresh:
            cache = model.new_cache()                                    # (re-)encode the visible text
            return model(visible, cache, **head)[:, -1, :]
        return model(visible[:, -1:], cache, **head)[:, -1, :]          # only the newest token

    try:
        return decode(step, idx, max_new_tokens, model.config.context_length, temperature, top_k, top_p,
                      eos_id, generator)
    finally:
        model.train(was_training)


def generate_text(model, prompt: str, max_new_tokens: int = 20, tokenizer=None, **kwargs) -> str:
    """Convenience: text in, text out (prompt included), with GPT-2's tokenizer."""
    from .tokenizer import ids_to_text, text_to_ids

    device = next(model.parameters()).device
    if not prompt:
        raise ValueError("the prompt is empty: give at least one token of text")
    ids = generate(model, text_to_ids(prompt, tokenizer).to(device), max_new_tokens, **kwargs)
    return ids_to_text(ids[0], tokenizer)
