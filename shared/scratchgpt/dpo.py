"""Preference tuning with Direct Preference Optimization (DPO, Rafailov et al. 2023).

Built in notebook 12 (`stage4_beyond/12_preference_tuning_dpo.ipynb`). Each example is a prompt with
a `chosen` and a `rejected` response. DPO needs no reward model and no sampling: it raises the
policy's log-probability of the chosen response relative to a frozen reference model (the starting
point), and lowers that of the rejected one, through one logistic loss:

    loss = -log sigmoid(beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected))))

`beta * (log pi - log ref)` is the response's implicit *reward*; the loss is small when the chosen
response's reward exceeds the rejected one's (the *reward margin*), and `beta` sets how far the
policy may move from the reference.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from .data import fetch
from .instruction import RESPONSE_HEADER, check_entry, format_input
from .progress import approx, progress_bar
from .tokenizer import EOT_ID, encode_text, gpt2_tokenizer
from .training import PROGRESS_EVERY_S, in_order, optimizer_step

PREFERENCE_FILE = "instruction-data-with-preference.json"


def load_preferences() -> list[dict]:
    """The 1,100 entries of instruction-data-with-preference.json
    (instruction, input, output, chosen, rejected)."""
    return json.loads(fetch(PREFERENCE_FILE).read_text(encoding="utf-8"))


def check_preference(entry, index: int | None = None) -> None:
    """A clear error for an entry without text under `chosen` and `rejected` (and an instruction)."""
    check_entry(entry | {"output": ""} if isinstance(entry, dict) else entry, index)
    where = f"preference entry {index}" if index is not None else "the preference entry"
    for key in ("chosen", "rejected"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"{where} needs a non-empty text under {key!r}")


class PreferenceDataset(Dataset):
    """Per entry: (prompt length, chosen tokens, rejected tokens); each response is the prompt, the
    response header, the response and `<|endoftext|>`."""

    def __init__(self, entries: list[dict], tokenizer=None):
        tokenizer = tokenizer or gpt2_tokenizer()
        self.examples = []
        for i, e in enumerate(entries):
            check_preference(e, i)
            prompt = encode_text(format_input(e) + RESPONSE_HEADER, tokenizer)
            self.examples.append((len(prompt),
                                  prompt + encode_text(e["chosen"], tokenizer) + [EOT_ID],
                                  prompt + encode_text(e["rejected"], tokenizer) + [EOT_ID]))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        return self.examples[i]


def pad_responses(sequences: list[list[int]], prompt_lengths: list[int], max_length: int | None = None,
                  pad_id: int = EOT_ID, device="cpu") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs, targets (inputs shifted by one) and a mask that is 1 on the response's targets only
    (not on the prompt, not on padding): (B, T) each. `max_length` truncates (the context length).

    An example whose response would be cut away entirely (a prompt of `max_length` tokens or more) is
    refused: its mask would be all zeros, so it would count as log-probability 0 and loss ln 2, and
    teach nothing while weight decay still moved the weights."""
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length!r}")
    if not sequences or len(sequences) != len(prompt_lengths):
        raise ValueError(f"pad_responses needs one prompt length per sequence, got {len(sequences)} "
                         f"sequences and {len(prompt_lengths)} prompt lengths")
    for row, (ids, prompt_len) in enumerate(zip(sequences, prompt_lengths)):
        if not 0 < prompt_len < len(ids):
            raise ValueError(f"example {row}: the prompt length {prompt_len} leaves no response in its "
                             f"{len(ids)} tokens")
        if max_length is not None and prompt_len > max_length:
            raise ValueError(f"example {row}: its prompt has {prompt_len} tokens, so no response token fits "
                             f"within max_length={max_length}; shorten the prompt or drop the example")
    longest = max(len(s) for s in sequences) - 1
    if max_length is not None:
        longest = min(longest, max_length)
    inputs = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    targets = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros(len(sequences), longest)
    for row, (ids, prompt_len) in enumerate(zip(sequences, prompt_lengths)):
        x, y = ids[:-1][:longest], ids[1:][:longest]
        inputs[row, : len(x)] = torch.tensor(x)
        targets[row, : len(y)] = torch.tensor(y)
        mask[row, max(prompt_len - 1, 0) : len(y)] = 1.0     # target i is token i + 1: responses start there
    return inputs.to(device), targets.to(device), mask.to(device)


def collate_preferences(batch, max_length: int | None = None, pad_id: int = EOT_ID,
                        device="cpu") -> dict[str, tuple]:
    """A batch of PreferenceDataset items -> {"chosen": (inputs, targets, mask), "rejected": (...)}."""
    prompt_lengths = [p for p, _, _ in batch]
    return {key: pad_responses([item[i] for item in batch], prompt_lengths, max_length, pad_id, device)
            for key, i in (("chosen", 1), ("rejected", 2))}


def response_logprobs(model, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum over each response's tokens of log p(token | everything before it): (B,).

    A sum (the DPO paper's choice), so a longer response has a lower log-probability; the reference
    model's log-probability, subtracted in the loss, carries the same length term."""
    if not hasattr(model, "hidden"):      # any model: logits everywhere, then keep the response's
        logprobs = F.log_softmax(model(inputs).float(), dim=-1)                     # (B, T, V)
        token_logprobs = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)     # (B, T)
        return (token_logprobs * mask).sum(dim=-1)
    # ours: the output head (most of a small model's work, V x d per token) on the response positions only
    where = mask.nonzero(as_tuple=True)                                             # (rows, positions)
    logits = model.lm_head(model.hidden(inputs)[where]).float()                     # (N, V)
    token_logprobs = F.log_softmax(logits, dim=-1).gather(-1, targets[where].unsqueeze(-1)).squeeze(-1)
    weighted = token_logprobs * mask[where]
    return torch.zeros(inputs.size(0), device=inputs.device).index_add(0, where[0], weighted)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, reference_chosen: torch.Tensor,
             reference_rejected: torch.Tensor,
             beta: float = 0.1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean DPO loss over a batch of log-probabilities (B,), and the chosen and rejected rewards (B,)."""
    if not (isinstance(beta, (int, float)) and 0 < beta < math.inf):
        raise ValueError(f"beta must be positive, got {beta}")
    shapes = [tuple(t.shape) for t in (policy_chosen, policy_rejected, reference_chosen, reference_rejected)]
    if len(set(shapes)) != 1 or len(shapes[0]) != 1:
        # (2, 1) against (2,) would broadcast into a (2, 2) loss: a wrong number, not an error
        raise ValueError("dpo_loss needs four log-probability tensors of one shape (B,) (policy chosen, "
                         f"policy rejected, reference chosen, reference rejected), got {shapes}")
    chosen_rewards = beta * (policy_chosen - reference_chosen)
    rejected_rewards = beta * (policy_rejected - reference_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


def batch_loss(policy, reference, batch: dict, beta: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The DPO loss of one collated batch, and its statistics (rewards, margin, log-probabilities)."""
    pc, pr = (response_logprobs(policy, *batch[k]) for k in ("chosen", "rejected"))
    with torch.no_grad():                                   # the reference is frozen
        rc, rr = (response_logprobs(reference, *batch[k]) for k in ("chosen", "rejected"))
    loss, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, beta)
    stats = {"loss": loss.item(), "margin": (chosen_r - rejected_r).mean().item(),
             "accuracy": (chosen_r > rejected_r).float().mean().item(),
             "chosen_logprob": pc.mean().item(), "rejected_logprob": pr.mean().item()}
    return loss, stats


@torch.no_grad()
def evaluate_preferences(policy, reference, loader, beta: float,
                         num_batches: int | None = None) -> dict[str, float]:
    """Mean statistics of `batch_loss` over a loader (in order), weighted by batch size."""
    if num_batches is not None and num_batches < 1:
        raise ValueError(f"num_batches must be 1 or more (or None: all), got {num_batches}")
    was_training = policy.training
    policy.eval()
    totals, n = {}, 0
    for i, batch in enumerate(in_order(loader)):
        if num_batches is not None and i >= num_batches:
            break
        size = batch["chosen"][0].size(0)
        _, stats = batch_loss(policy, reference, batch, beta)
        for k, v in stats.items():
            totals[k] = totals.get(k, 0.0) + v * size
        n += size
    policy.train(was_training)
    if n == 0:
        raise ValueError("the preference loader is empty: there is nothing to evaluate")
    return {k: v / n for k, v in totals.items()}


@dataclass
class DPOHistory:
    steps: list[int] = field(default_factory=list)
    # statistics of the training batches since the last evaluation
    train: list[dict] = field(default_factory=list)
    val: list[dict] = field(default_factory=list)


def train_dpo(policy, reference, train_loader, val_loader, epochs: int, lr: float, beta: float = 0.1,
              eval_every: int = 10, eval_batches: int | None = None, weight_decay: float = 0.01,
              grad_clip: float | None = 1.0, log=print, progress: bool = True) -> DPOHistory:
    """AdamW on the DPO loss; evaluates on `val_loader` before training and every `eval_every` steps.

    Everything is checked before the reference is frozen, so a refused call leaves both models as they
    were."""
    if len(train_loader) == 0:
        raise ValueError("the preference loader is empty: there is nothing to train on")
    if len(val_loader) == 0:
        raise ValueError("the validation loader is empty: DPO evaluates on it before training and after")
    counts = [("epochs", epochs, 0), ("eval_every", eval_every, 1)] + \
        ([("eval_batches", eval_batches, 1)] if eval_batches is not None else [])
    for name, value, least in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    if not (isinstance(lr, (int, float)) and 0 < lr < math.inf):
        raise ValueError(f"lr must be a positive number, got {lr}")
    if not (isinstance(beta, (int, float)) and 0 < beta < math.inf):
        raise ValueError(f"beta must be positive, got {beta}")
    reference_ids = {id(p) for p in reference.parameters()}
    if policy is reference or any(id(p) in reference_ids for p in policy.parameters()):
        raise ValueError("the policy and the reference share their weights: the reference must be a frozen "
                         "copy (e.g. copy.deepcopy(policy), or the same model loaded twice)")
    if not any(p.requires_grad for p in policy.parameters()):
        raise ValueError("the policy has no trainable parameters (all have requires_grad=False)")
    reference.eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    optimizer = torch.optim.AdamW((p for p in policy.parameters() if p.requires_grad), lr=lr,
                                  weight_decay=weight_decay)
    history, step, recent = DPOHistory(), 0, []

    def evaluate():
        val = evaluate_preferences(policy, reference, val_loader, beta, eval_batches)
        train = {k: sum(s[k] for s in recent) / len(recent) for k in recent[0]} if recent else val
        history.steps.append(step)
        history.train.append(train)
        history.val.append(val)
        recent.clear()
        log(f"step {step:>4}: val loss {approx(val['loss'])}, reward margin {approx(val['margin'])}, "
            f"reward accuracy {approx(val['accuracy'], '.1%')}")

    evaluate()
    total = epochs * len(train_loader)
    bar = progress_bar(total=total, desc="DPO", disable=not progress, mininterval=PROGRESS_EVERY_S)
    policy.train()
    for _ in range(epochs):
        for batch in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss, stats = batch_loss(policy, reference, batch, beta)
            loss.backward()
            optimizer_step(policy, optimizer, grad_clip, step)
            recent.append(stats)
            step += 1
            bar.update(1)
            if step % eval_every == 0 or step == total:
                evaluate()
    bar.close()
    policy.eval()
    return history
