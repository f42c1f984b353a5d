"""Evaluating a language model: held-out perplexity and multiple-choice accuracy.

The multiple-choice harness scores each choice by the log-likelihood the model gives to the
choice's tokens after the context, the method behind HellaSwag-style benchmarks: the model never
has to *write* the answer, only to find it more likely than the alternatives. Summed log-likelihood
favours short choices; dividing by the number of tokens (length normalisation) corrects for that.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .paths import DATA_DIR
from .tokenizer import encode_text, gpt2_tokenizer

MULTIPLE_CHOICE = DATA_DIR / "multiple_choice.jsonl"


@dataclass(frozen=True)
class MCItem:
    context: str
    choices: tuple[str, ...]
    label: int


def load_multiple_choice(path: str | Path = MULTIPLE_CHOICE) -> list[MCItem]:
    """Items of the project's own set (`context`, `choices`, `label` per JSON line)."""
    items = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not 0 <= row["label"] < len(row["choices"]):
                raise ValueError(f"{Path(path).name} line {n}: label {row['label']} is not a choice index")
            items.append(MCItem(row["context"], tuple(row["choices"]), row["label"]))
    return items


def load_hellaswag(path: str | Path) -> list[MCItem]:
    """HellaSwag's validation file (`hellaswag_val.jsonl`: `ctx`, `endings`, `label`), as downloaded."""
    items = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            items.append(MCItem(row["ctx"], tuple(" " + e for e in row["endings"]), int(row["label"])))
    return items


@torch.no_grad()
def choice_logprobs(model, context_ids: list[int], choice_ids: list[int]) -> float:
    """Sum of log p(choice token | everything before it), cropped to the model's context from the left."""
    ids = (context_ids + choice_ids)[-(model.config.context_length + 1):]
    n = min(len(choice_ids), len(ids) - 1)
    device = next(model.parameters()).device
    x = torch.tensor([ids[:-1]], device=device)
    logprobs = F.log_softmax(model(x)[0, -n:].float(), dim=-1)                # (n, V)
    targets = torch.tensor(ids[-n:], device=device)
    return logprobs.gather(1, targets[:, None]).sum().item()


def score_item(model, item: MCItem, tokenizer=None) -> tuple[list[float], list[float]]:
    """Summed and length-normalised log-likelihood of each choice."""
    tokenizer = tokenizer or gpt2_tokenizer()
    ctx = encode_text(item.context, tokenizer)
    summed, normalised = [], []
    for choice in item.choices:
        ids = encode_text(choice, tokenizer)
        if not ids or not ctx:
            raise ValueError(f"empty context or choice in item {item.context!r}")
        s = choice_logprobs(model, ctx, ids)
        summed.append(s)
        normalised.append(s / len(ids))
    return summed, normalised


def multiple_choice_accuracy(model, items: list[MCItem], tokenizer=None) -> dict[str, float]:
    """Accuracy with summed and with length-normalised scores, and the chance level."""
    if not items:
        raise ValueError("no multiple-choice items to evaluate")
    was_training = model.training
    model.eval()
    right_sum = right_norm = 0
    for item in items:
        summed, normalised = score_item(model, item, tokenizer)
        right_sum += max(range(len(summed)), key=summed.__getitem__) == item.label
        right_norm += max(range(len(normalised)), key=normalised.__getitem__) == item.label
    model.train(was_training)
    return {"summed": right_sum / len(items), "normalised": right_norm / len(items),
            "chance": sum(1 / len(i.choices) for i in items) / len(items), "items": len(items)}


# Windows for held-out loss on the curriculum's short texts (notebook 06): The Verdict's held-out
# end is 534 tokens, shorter than GPT-2's context of 1024; every profile evaluates at most this many.
HELD_OUT_WINDOW = 256


def accuracy_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% confidence interval (Wilson score) of an accuracy measured as `correct` out of `n` items.

    On a few dozen items an accuracy is a rough estimate: 18 of 60 right gives 30%, but anything from
    about 20% to 43% is consistent with it. Wilson's interval stays inside [0, 1] even at 0 or n.
    """
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n and n >= 1, got {correct} of {n}")
    p = correct / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def perplexity(loss: float) -> float:
    """exp(mean cross-entropy): the effective number of equally likely next tokens."""
    return math.exp(loss)
