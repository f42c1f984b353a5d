"""Classification fine-tuning: turn a pretrained GPT into a spam classifier.

Built in notebook 07 (`stage3_finetuning/07_classification_finetuning.ipynb`). The recipe: replace the
output head (one score per vocabulary token) by a head with one score per class, feed the message,
and read the scores at the message's **last token**, the only position whose causal attention has
seen the whole message.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .data import fetch
from .progress import approx, progress_bar
from .tokenizer import EOT_ID, encode_text, gpt2_tokenizer
from .training import PROGRESS_EVERY_S, in_order, optimizer_step

LABELS = ("not spam", "spam")           # class index -> name
SMS_LABELS = {"ham": 0, "spam": 1}      # the collection's own labels


def load_sms() -> list[tuple[int, str]]:
    """All 5,574 messages of the SMS Spam Collection as (label, text), label 1 = spam.

    Each line is `label<TAB>text`. The texts contain unbalanced double quotes, so reading the file
    as CSV with quoting (pandas' default) silently merges lines and yields 5,572 rows; splitting each
    line at its first tab reads them all.
    """
    rows = []
    for n, line in enumerate(fetch("SMSSpamCollection").read_text(encoding="utf-8").splitlines(), 1):
        label, sep, text = line.partition("\t")
        if not sep or label not in SMS_LABELS:
            raise ValueError(f"SMSSpamCollection line {n} is not 'ham|spam<TAB>text': {line[:40]!r}")
        rows.append((SMS_LABELS[label], text))
    return rows


def balance(rows: list[tuple[int, str]], seed: int = 123) -> list[tuple[int, str]]:
    """All spam messages plus as many randomly chosen ham messages (the usual recipe: 747 + 747)."""
    spam = [r for r in rows if r[0] == 1]
    ham = [r for r in rows if r[0] == 0]
    return random.Random(seed).sample(ham, len(spam)) + spam


def split(rows: list, fractions=(0.7, 0.1, 0.2), seed: int = 123) -> tuple[list, list, list]:
    """Shuffle with a fixed seed, then cut into training, validation and test parts."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    rows = rows[:]
    random.Random(seed).shuffle(rows)
    n_train = int(fractions[0] * len(rows))
    n_val = int(fractions[1] * len(rows))
    return rows[:n_train], rows[n_train : n_train + n_val], rows[n_train + n_val :]


class SpamDataset(Dataset):
    """Token ids of each message, padded with `<|endoftext|>` to a common length.

    `max_length=None` pads to the longest message of this data set; a given `max_length` pads to it
    and truncates longer messages (keeping their first tokens). Each item is
    `(ids, length, label)`: `length` is the number of real tokens, so the classifier can read the
    last real token. An empty message is an error: there would be no token to classify.
    """

    def __init__(self, rows: list[tuple[int, str]], max_length: int | None = None, tokenizer=None,
                 pad_id: int = EOT_ID):
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
        tokenizer = tokenizer or gpt2_tokenizer()
        encoded = [encode_text(text, tokenizer) for _, text in rows]
        for i, ids in enumerate(encoded):
            if not ids:
                raise ValueError(f"message {i} is empty: an empty text cannot be classified")
        self.max_length = max(len(ids) for ids in encoded) if max_length is None else max_length
        self.truncated = sum(len(ids) > self.max_length for ids in encoded)
        encoded = [ids[: self.max_length] for ids in encoded]
        self.lengths = torch.tensor([len(ids) for ids in encoded])
        self.ids = torch.tensor([ids + [pad_id] * (self.max_length - len(ids)) for ids in encoded])
        self.labels = torch.tensor([label for label, _ in rows])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.ids[i], self.lengths[i], self.labels[i]


def make_loaders(train_rows, val_rows, test_rows, batch_size: int, max_length: int | None = None,
                 seed: int = 123):
    """Datasets padded to the longest training message (capped at `max_length`) and their loaders."""
    train_ds = SpamDataset(train_rows)
    if max_length is not None and train_ds.max_length > max_length:
        train_ds = SpamDataset(train_rows, max_length)
    val_ds, test_ds = (SpamDataset(rows, train_ds.max_length) for rows in (val_rows, test_rows))
    g = torch.Generator().manual_seed(seed)
    return (DataLoader(train_ds, batch_size, shuffle=True, drop_last=True, generator=g),
            DataLoader(val_ds, batch_size), DataLoader(test_ds, batch_size))


def to_classifier(model, num_classes: int = 2, trainable: str = "last_block"):
    """Replace the output head by a `num_classes` head and choose what trains.

    `trainable`: "all" (every parameter), "last_block" (the last transformer block, the final norm and
    the head: the usual GPT-2 recipe), or "head" (the new head only).
    """
    if trainable not in ("all", "last_block", "head"):
        raise ValueError(f"trainable must be 'all', 'last_block' or 'head', got {trainable!r}")
    model.lm_head = nn.Linear(model.config.n_embd, num_classes)   # a new, untied head
    for p in model.parameters():
        p.requires_grad = trainable == "all"
    if trainable == "last_block":
        for module in (model.transformer.h[-1], model.transformer.ln_f):
            for p in module.parameters():
                p.requires_grad = True
    for p in model.lm_head.parameters():
        p.requires_grad = True
    return model


def class_logits(model, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Class scores at each message's last real token: (B, T) ids, (B,) lengths -> (B, num_classes)."""
    logits = model(ids)                                                   # (B, T, num_classes)
    last = (lengths - 1).clamp(min=0).to(logits.device)
    return logits[torch.arange(len(ids), device=logits.device), last]    # (B, num_classes)


def _batch_logits(model, batch, device):
    ids, lengths, labels = batch
    return class_logits(model, ids.to(device), lengths), labels.to(device)


@torch.no_grad()
def evaluate(model, loader, num_batches: int | None = None) -> tuple[float, float]:
    """(accuracy, mean loss) over the first `num_batches` batches of `loader` (all by default)."""
    if len(loader) == 0:
        raise ValueError("the data loader is empty: nothing to evaluate")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = seen = 0
    loss = 0.0
    for i, batch in enumerate(in_order(loader)):   # a shuffled loader: the same batches every time
        if num_batches is not None and i == num_batches:
            break
        logits, labels = _batch_logits(model, batch, device)
        correct += (logits.argmax(-1) == labels).sum().item()
        seen += len(labels)
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
    model.train(was_training)
    return correct / seen, loss / seen


def accuracy(model, loader, num_batches: int | None = None) -> float:
    """Share of messages whose highest class score is the right label."""
    return evaluate(model, loader, num_batches)[0]


def train_classifier(model, optimizer, train_loader, val_loader, epochs: int, eval_batches: int | None = None,
                     log=print, progress: bool = True):
    """Fine-tune for `epochs`; after each epoch record training/validation loss and accuracy.

    `eval_batches` limits the evaluation to the first batches of each loader (faster; None: all).
    """
    device = next(model.parameters()).device
    history = {"epoch": [], "train_loss": [], "val_loss": [], "train_acc": [], "val_acc": [], "examples": []}
    seen = step = 0
    bar = progress_bar(total=epochs * len(train_loader), desc="fine-tuning", disable=not progress,
                       mininterval=PROGRESS_EVERY_S)
    for epoch in range(1, epochs + 1):
        model.train()
        for batch in train_loader:
            optimizer.zero_grad(set_to_none=True)
            logits, labels = _batch_logits(model, batch, device)
            F.cross_entropy(logits, labels).backward()
            optimizer_step(model, optimizer, None, step)
            step += 1
            seen += len(labels)
            bar.update(1)
        train_acc, train_loss = evaluate(model, train_loader, eval_batches)
        val_acc, val_loss = evaluate(model, val_loader, eval_batches)
        for key, value in zip(history, (epoch, train_loss, val_loss, train_acc, val_acc, seen)):
            history[key].append(value)
        log(f"epoch {epoch}: train loss {approx(train_loss)}, acc {approx(train_acc, '.1%')} | "
            f"val loss {approx(val_loss)}, acc {approx(val_acc, '.1%')}")   # ~: varies by CPU
    bar.close()
    return history


@torch.no_grad()
def classify(model, text: str, max_length: int | None = None, tokenizer=None) -> str:
    """'spam' or 'not spam' for one message.

    An empty message is a ValueError. A message longer than `max_length` (default: the model's
    context length) is truncated to its first `max_length` tokens, as in training.
    """
    tokenizer = tokenizer or gpt2_tokenizer()
    ids = encode_text(text, tokenizer)
    if not ids:
        raise ValueError("the message is empty: there is nothing to classify")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be a positive number of tokens, got {max_length}")
    limit = min(model.config.context_length if max_length is None else max_length,
                model.config.context_length)
    ids = ids[:limit]
    model.eval()
    device = next(model.parameters()).device
    logits = class_logits(model, torch.tensor([ids], device=device), torch.tensor([len(ids)]))
    return LABELS[logits.argmax(-1).item()]
