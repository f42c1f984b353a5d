"""DPO: the loss against hand-worked values, log-probabilities against a token-by-token reference."""

import math

import pytest
import torch

from scratchgpt.config import GPTConfig
from scratchgpt.dpo import (
    PreferenceDataset,
    collate_preferences,
    dpo_loss,
    load_preferences,
    pad_responses,
    response_logprobs,
    train_dpo,
)
from scratchgpt.instruction import RESPONSE_HEADER, format_input
from scratchgpt.model import GPT
from scratchgpt.tokenizer import EOT_ID, encode_text


def test_dpo_loss_on_hand_worked_numbers():
    # policy prefers the chosen response by 1 nat more than the reference, and the rejected one by 1 less
    loss, chosen, rejected = dpo_loss(torch.tensor([-10.0]), torch.tensor([-12.0]),
                                      torch.tensor([-11.0]), torch.tensor([-11.0]), beta=0.1)
    assert chosen.item() == pytest.approx(0.1) and rejected.item() == pytest.approx(-0.1)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-0.2)), abs=1e-6)   # -log sigmoid(0.2) = 0.5981
    # policy equal to the reference: margin 0, loss log 2, whatever the log-probabilities
    same = torch.tensor([-3.0, -50.0])
    loss, chosen, rejected = dpo_loss(same, same - 7, same, same - 7, beta=0.5)
    assert loss.item() == pytest.approx(math.log(2)) and torch.all(chosen == 0) and torch.all(rejected == 0)
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo_loss(same, same, same, same, beta=0.0)


def test_dpo_gradient_is_the_analytic_one():
    pc = torch.tensor([-10.0], requires_grad=True)
    loss, _, _ = dpo_loss(pc, torch.tensor([-12.0]), torch.tensor([-11.0]), torch.tensor([-11.0]), beta=0.1)
    loss.backward()
    # d/dpc [-log sigmoid(beta m)] = -beta * sigmoid(-beta m), m = 2
    assert pc.grad.item() == pytest.approx(-0.1 / (1 + math.exp(0.2)), abs=1e-7)


def test_pad_responses_masks_prompt_and_padding():
    inputs, targets, mask = pad_responses([[1, 2, 3, 4, 5], [6, 7, 8]], prompt_lengths=[2, 2], pad_id=0)
    assert inputs.tolist() == [[1, 2, 3, 4], [6, 7, 0, 0]]
    assert targets.tolist() == [[2, 3, 4, 5], [7, 8, 0, 0]]
    # targets 3, 4, 5 are the response of the first (tokens after the 2-token prompt); 8 of the second
    assert mask.tolist() == [[0, 1, 1, 1], [0, 1, 0, 0]]
    _, _, cut = pad_responses([[1, 2, 3, 4, 5]], [2], max_length=2, pad_id=0)
    assert cut.tolist() == [[0, 1]]


def test_response_logprobs_equal_a_token_by_token_computation():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, context_length=16, n_embd=32, n_layer=2, n_head=2)).eval()
    seqs, prompts = [[3, 4, 5, 6, 7, 8], [9, 10, 11, 12]], [3, 2]
    with torch.no_grad():
        got = response_logprobs(model, *pad_responses(seqs, prompts, pad_id=0))
        expected = []
        for ids, p in zip(seqs, prompts):
            total = 0.0
            for i in range(p, len(ids)):     # log p(ids[i] | ids[:i]), one forward per token
                total += torch.log_softmax(model(torch.tensor([ids[:i]]))[0, -1], -1)[ids[i]].item()
            expected.append(total)
    assert got.tolist() == pytest.approx(expected, abs=1e-4)


def test_preference_dataset_on_the_real_file():
    data = load_preferences()
    assert len(data) == 1100 and all(e["chosen"] and e["rejected"] for e in data)
    prompt_len, chosen, rejected = PreferenceDataset(data[:1])[0]
    assert prompt_len == len(encode_text(format_input(data[0]) + RESPONSE_HEADER))
    assert chosen[:prompt_len] == rejected[:prompt_len] and chosen[-1] == EOT_ID == rejected[-1]
    assert chosen[prompt_len:-1] == encode_text(data[0]["chosen"])
    with pytest.raises(ValueError, match="non-empty text under 'rejected'"):
        PreferenceDataset([{"instruction": "x", "input": "", "chosen": "a", "rejected": ""}])
    with pytest.raises(ValueError, match="not a dict"):
        PreferenceDataset(["just text"])


def test_training_raises_the_margin_on_its_pairs():
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, context_length=16, n_embd=32, n_layer=2, n_head=2)
    policy, reference = GPT(cfg), GPT(cfg)
    reference.load_state_dict(policy.state_dict())
    batch = [(2, [1, 2, 3, 4, 5], [1, 2, 6, 7, 8]), (2, [1, 9, 3, 4], [1, 9, 10, 11])]
    loader = [collate_preferences(batch, pad_id=0)]
    history = train_dpo(policy, reference, loader, loader, epochs=20, lr=1e-2, beta=0.5, eval_every=20,
                        log=lambda *_: None, progress=False)
    before, after = history.val[0], history.val[-1]
    assert before["margin"] == pytest.approx(0.0, abs=1e-6) \
        and before["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert after["margin"] > 1.0 and after["accuracy"] == 1.0 and after["loss"] < 0.3
    assert not any(p.requires_grad for p in reference.parameters())


def test_head_on_response_positions_only_equals_full_logits():
    torch.manual_seed(1)
    model = GPT(GPTConfig(vocab_size=50, context_length=16, n_embd=32, n_layer=2, n_head=2)).eval()

    class Plain(torch.nn.Module):   # no `hidden`: the generic path over all positions
        def forward(self, idx):
            return model(idx)

    batch = pad_responses([[3, 4, 5, 6, 7, 8], [9, 10, 11, 12], [1, 2, 3]], [3, 2, 1], pad_id=0)
    with torch.no_grad():
        assert torch.allclose(response_logprobs(model, *batch), response_logprobs(Plain(), *batch), atol=1e-5)


def test_a_prompt_that_leaves_no_room_for_the_response_is_refused():
    """The issue's reproduction: a 200-word prompt and max_length 64 left an all-zero mask (log-probability
    0, loss ln 2, accuracy 0) and training ran on. One token of response still counts."""
    long = PreferenceDataset([{"instruction": "word " * 200, "chosen": "a", "rejected": "b"}])[0]
    with pytest.raises(ValueError, match=r"example 0: its prompt has \d+ tokens, so no response token fits "
                                         "within max_length=64"):
        collate_preferences([long], max_length=64)
    _, _, mask = pad_responses([[1, 2, 3, 4, 5]], [3], max_length=3, pad_id=0)   # prompt = max_length
    assert mask.tolist() == [[0, 0, 1]]                                        # its first response token
    with pytest.raises(ValueError, match="example 0: its prompt has 4 tokens"):
        pad_responses([[1, 2, 3, 4, 5]], [4], max_length=3, pad_id=0)
    with pytest.raises(ValueError, match="max_length must be a positive number of tokens, got 0"):
        pad_responses([[1, 2, 3]], [1], max_length=0)
    with pytest.raises(ValueError, match="prompt length 3 leaves no response in its 3 tokens"):
        pad_responses([[1, 2, 3]], [3])


def test_without_max_length_a_batch_longer_than_the_context_is_named():
    long = PreferenceDataset([{"instruction": "word " * 200, "chosen": "a", "rejected": "b"}])[0]
    model = GPT(GPTConfig(vocab_size=50257, context_length=64, n_embd=16, n_layer=1, n_head=2))
    with pytest.raises(ValueError, match="longer than the context length 64"):
        response_logprobs(model, *collate_preferences([long])["chosen"])


def test_dpo_loss_refuses_shapes_that_would_broadcast():
    a, b = torch.tensor([[-1.0], [-2.0]]), torch.tensor([-1.5, -2.5])
    with pytest.raises(ValueError, match=r"one shape \(B,\).*got \[\(2, 1\), \(2,\), \(2,\), \(2,\)\]"):
        dpo_loss(a, b, b, b)
    loss, _, _ = dpo_loss(a.squeeze(1), b, b, b, beta=0.1)      # the right shapes: one loss per pair
    expected = -torch.nn.functional.logsigmoid(0.1 * (a.squeeze(1) - b)).mean()
    assert loss.item() == pytest.approx(expected.item())


def tiny_pair():
    cfg = GPTConfig(vocab_size=50, context_length=16, n_embd=16, n_layer=1, n_head=2)
    policy, reference = GPT(cfg), GPT(cfg)
    reference.load_state_dict(policy.state_dict())
    return policy, reference, [collate_preferences([(2, [1, 2, 3, 4], [1, 2, 6, 7])], pad_id=0)]


@pytest.mark.parametrize("call, message", [
    (lambda p, r, data: train_dpo(p, p, data, data, 1, 1e-3), "share their weights"),
    (lambda p, r, data: train_dpo(p, r, data, [], 1, 1e-3), "validation loader is empty"),
    (lambda p, r, data: train_dpo(p, r, data, data, 1, 1e-3, eval_every=0), "eval_every must be .* got 0"),
    (lambda p, r, data: train_dpo(p, r, data, data, 1, 1e-3, eval_batches=0), "eval_batches must be"),
    (lambda p, r, data: train_dpo(p, r, data, data, 1, -1.0), "lr must be a positive number, got -1.0"),
    (lambda p, r, data: train_dpo(p, r, data, data, 1, 1e-3, beta=0), "beta must be positive"),
    (lambda p, r, data: train_dpo(p, r, data, data, -1, 1e-3), "epochs must be .* got -1"),
])
def test_a_refused_dpo_run_names_the_problem_and_changes_no_model(call, message):
    policy, reference, data = tiny_pair()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    with pytest.raises(ValueError, match=message):
        call(policy, reference, data)
    assert all(p.requires_grad for p in policy.parameters())      # not left frozen
    assert all(p.requires_grad for p in reference.parameters())
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_a_frozen_policy_is_refused():
    policy, reference, data = tiny_pair()
    for p in policy.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_dpo(policy, reference, data, data, 1, 1e-3)
