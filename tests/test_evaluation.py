"""The multiple-choice harness: log-likelihood scoring, accuracy, and the file readers."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from scratchgpt import GPTConfig
from scratchgpt.evaluation import (
    MCItem,
    choice_logprobs,
    load_hellaswag,
    load_multiple_choice,
    multiple_choice_accuracy,
    perplexity,
    score_item,
)
from scratchgpt.model import GPT


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(context_length=32, n_embd=32, n_layer=1, n_head=2)).eval()


def test_choice_logprobs_sums_the_choice_tokens(model):
    ctx, choice = [10, 20, 30], [40, 50]
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ctx + choice[:-1]]))[0], -1)
    expected = logp[2, 40].item() + logp[3, 50].item()
    assert choice_logprobs(model, ctx, choice) == pytest.approx(expected, abs=1e-4)


def test_accuracy_picks_the_most_likely_choice(model):
    item = MCItem("The sun rises in the", (" east.", " west.", " sky."), label=0)
    summed, normalised = score_item(model, item)
    best_sum = max(range(3), key=summed.__getitem__)
    best_norm = max(range(3), key=normalised.__getitem__)
    items = [MCItem(item.context, item.choices, best_sum)]
    acc = multiple_choice_accuracy(model, items)
    assert acc["summed"] == 1.0 and acc["chance"] == pytest.approx(1 / 3) and acc["items"] == 1
    assert acc["normalised"] == float(best_norm == best_sum)
    with pytest.raises(ValueError, match="no multiple-choice items"):
        multiple_choice_accuracy(model, [])


def test_project_set_and_hellaswag_reader(tmp_path):
    items = load_multiple_choice()
    assert len(items) >= 50 and all(len(i.choices) == 4 and 0 <= i.label < 4 for i in items)
    row = {"ctx": "A man is sitting on a roof. He", "endings": ["starts pulling up roofing.", "is ugly.",
           "sits.", "flies."], "label": "0"}
    (tmp_path / "hs.jsonl").write_text(json.dumps(row) + "\n")
    hs = load_hellaswag(tmp_path / "hs.jsonl")
    assert hs[0].label == 0 and hs[0].choices[0] == " starts pulling up roofing."
    (tmp_path / "bad.jsonl").write_text(json.dumps({"context": "x", "choices": [" a"], "label": 3}) + "\n")
    with pytest.raises(ValueError, match="label 3"):
        load_multiple_choice(tmp_path / "bad.jsonl")


def test_perplexity():
    assert perplexity(math.log(50257)) == pytest.approx(50257)


def test_missing_gpt2_checksum_is_a_clear_error():
    from scratchgpt.data import DataError
    from scratchgpt.gpt2_weights import gpt2_model

    with pytest.raises(DataError, match="no entry for gpt2-355M.safetensors.*gpt2-medium"):
        gpt2_model("355M")


def test_accuracy_interval_against_a_hand_worked_wilson_interval():
    from scratchgpt.evaluation import accuracy_interval

    # 18 of 60, z = 1.96, worked by hand: center 0.31203, half-width 0.11305
    low, high = accuracy_interval(18, 60)
    assert low == pytest.approx(0.19898, abs=1e-4) and high == pytest.approx(0.42509, abs=1e-4)
    assert accuracy_interval(0, 10)[0] == 0.0 and accuracy_interval(10, 10)[1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="need 0 <= correct <= n"):
        accuracy_interval(11, 10)


def test_accuracy_interval_covers_a_guessers_accuracy_about_95_times_in_100():
    from scratchgpt.evaluation import accuracy_interval

    # exact binomial coverage for a guesser (p = 1/4): the share of runs whose accuracy lands inside the
    # interval around the expected count; Wilson's 95% interval should hold about 95% of them
    for n in (60, 600):
        low, high = accuracy_interval(n // 4, n)
        inside = [k for k in range(n + 1) if low <= k / n <= high]
        coverage = sum(math.comb(n, k) * 0.25 ** k * 0.75 ** (n - k) for k in inside)
        assert 0.92 < coverage < 0.98, (n, coverage)
    # ten times the items: the interval narrows about sqrt(10) times
    widths = [high - low for low, high in (accuracy_interval(15, 60), accuracy_interval(150, 600))]
    assert widths[0] / widths[1] == pytest.approx(math.sqrt(10), rel=0.05)
