from collections import Counter

import pytest
import torch

from scratchgpt import EOT_ID, GPTConfig, gpt2_tokenizer
from scratchgpt.classification import (
    SpamDataset,
    accuracy,
    balance,
    class_logits,
    classify,
    evaluate,
    load_sms,
    make_loaders,
    split,
    to_classifier,
)
from scratchgpt.model import GPT

CFG = GPTConfig(context_length=32, n_embd=32, n_layer=2, n_head=2, dropout=0.0)


def test_reads_all_messages():
    rows = load_sms()
    assert len(rows) == 5574 and Counter(label for label, _ in rows) == {0: 4827, 1: 747}


def test_balance_and_split_counts():
    balanced = balance(load_sms(), seed=123)
    assert Counter(label for label, _ in balanced) == {0: 747, 1: 747}
    train, val, test = split(balanced, (0.7, 0.1, 0.2), seed=123)
    assert (len(train), len(val), len(test)) == (1045, 149, 300)
    assert sorted(train + val + test) == sorted(balanced)             # a partition (the data has duplicates)
    assert split(balanced, seed=123) == (train, val, test)        # a fixed seed gives a fixed split
    assert split(balanced, seed=7) != (train, val, test)
    with pytest.raises(ValueError, match="sum to 1"):
        split(balanced, (0.5, 0.2, 0.2))


def test_padding_and_truncation():
    rows = [(0, "Hello there"), (1, "Win a free prize now by calling this number today")]
    ds = SpamDataset(rows)
    n = len(ds.ids[1])
    assert ds.max_length == n and ds.lengths.tolist() == [2, n]
    assert ds.ids[0, 2:].tolist() == [EOT_ID] * (n - 2)             # padded with <|endoftext|>
    cut = SpamDataset(rows, max_length=4)
    assert cut.ids.shape == (2, 4) and cut.lengths.tolist() == [2, 4] and cut.truncated == 1
    # every word differs, so the front and the back of the message cannot be mistaken for each other
    assert gpt2_tokenizer().decode(cut.ids[1].tolist()) == "Win a free prize"    # the first tokens stay


def test_empty_message_is_an_error():
    with pytest.raises(ValueError, match="message 1 is empty"):
        SpamDataset([(0, "fine"), (1, "")])


def test_validation_and_test_use_the_training_length():
    rows = [(0, "a b c d e f g h")] * 10 + [(1, "short")] * 10
    train, val, test = make_loaders(rows[:16], rows[16:18], [(0, "x " * 50)] * 2, batch_size=4)
    assert val.dataset.max_length == test.dataset.max_length == train.dataset.max_length
    assert test.dataset.truncated == 2
    capped, _, _ = make_loaders(rows[:16], rows[16:18], rows[:2], batch_size=4, max_length=5)
    assert capped.dataset.max_length == 5 and capped.dataset.truncated == 10
    uncapped, _, _ = make_loaders(rows[:16], rows[16:18], rows[:2], batch_size=4, max_length=128)
    assert uncapped.dataset.max_length == train.dataset.max_length < 128   # the longest message, not the cap


def test_last_token_classification_shapes_and_padding_invariance():
    torch.manual_seed(0)
    model = to_classifier(GPT(CFG), num_classes=2).eval()
    ids = torch.randint(0, 50000, (3, 10))
    lengths = torch.tensor([10, 4, 1])
    logits = class_logits(model, ids, lengths)
    assert logits.shape == (3, 2)
    padded = ids.clone()
    padded[1, 4:] = EOT_ID                          # other padding after the last real token
    assert torch.allclose(class_logits(model, padded, lengths), logits, atol=1e-6)
    alone = class_logits(model, ids[1:2, :4], torch.tensor([4]))
    assert torch.allclose(alone, logits[1:2], atol=1e-5)


def test_trainable_choices():
    def n_trainable(m):
        return sum(p.numel() for p in m.parameters() if p.requires_grad)

    head = n_trainable(to_classifier(GPT(CFG), trainable="head"))
    last = n_trainable(to_classifier(GPT(CFG), trainable="last_block"))
    everything = to_classifier(GPT(CFG), trainable="all")
    assert head == 32 * 2 + 2 < last < n_trainable(everything) == everything.num_parameters()
    with pytest.raises(ValueError, match="trainable"):
        to_classifier(GPT(CFG), trainable="some")


class Fixed(torch.nn.Module):
    """A stand-in 'model' whose class scores are given, to test the accuracy arithmetic."""

    def __init__(self, scores):
        super().__init__()
        self.scores = scores
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, ids):
        return self.scores[ids[:, 0]].unsqueeze(1).expand(-1, ids.shape[1], -1)


def test_accuracy_function():
    scores = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0], [0.0, 2.0]])   # predicts 0, 1, 0, 1
    ids = torch.arange(4)[:, None].repeat(1, 3)
    data = [(ids, torch.full((4,), 3), torch.tensor([0, 1, 1, 1]))]           # 3 of 4 right
    assert accuracy(Fixed(scores), data) == 0.75
    assert evaluate(Fixed(scores), data)[1] == pytest.approx(
        torch.nn.functional.cross_entropy(scores, torch.tensor([0, 1, 1, 1])).item())
    assert accuracy(Fixed(scores), data * 2, num_batches=1) == 0.75
    with pytest.raises(ValueError, match="empty"):
        accuracy(Fixed(scores), [])


def test_classify_handles_empty_and_long_messages():
    model = to_classifier(GPT(CFG)).eval()
    with pytest.raises(ValueError, match="empty"):
        classify(model, "")
    long = "word " * 500                                       # far beyond the context of 32
    assert classify(model, long) in ("spam", "not spam")
    assert classify(model, long) == classify(model, "word " * 32)   # truncated to the first tokens
