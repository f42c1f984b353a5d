"""Small bad inputs found by trying the package as a learner would: each gets a clear error (or, for
text that merely spells a special token, is treated as the text it is)."""

import os

import pytest
import torch

from scratchgpt import EOT, EOT_ID, gpt2_tokenizer
from scratchgpt.classification import SpamDataset, classify, to_classifier
from scratchgpt.config import GPTConfig
from scratchgpt.course.profiles import profile
from scratchgpt.data import MIRROR_ENV, fetch
from scratchgpt.dataset import GPTDataset
from scratchgpt.generation import generate, generate_text
from scratchgpt.instruction import InstructionDataset, collate, format_example
from scratchgpt.llama import LlamaConfig
from scratchgpt.model import GPT
from scratchgpt.paths import REPO_ROOT

SMALL = profile("tiny").model.with_(n_layer=1, n_embd=16, n_head=2, context_length=16)


def test_end_of_text_inside_a_message_is_just_text():
    message = f"WIN a prize {EOT} now"
    ds = SpamDataset([(1, message)])
    ids = ds.ids[0, : ds.lengths[0]].tolist()
    assert EOT_ID not in ids                                          # not the special token...
    assert gpt2_tokenizer().decode(ids) == message                    # ...but its characters
    torch.manual_seed(0)
    assert classify(to_classifier(GPT(SMALL), 2), message) in ("spam", "not spam")
    entry = {"instruction": f"Repeat {EOT}", "input": "", "output": f"{EOT} it is"}
    (tokens, _), = InstructionDataset([entry])
    assert EOT_ID not in tokens and gpt2_tokenizer().decode(tokens) == format_example(entry)


def test_generation_from_broken_weights_says_so():
    model = GPT(SMALL)
    with torch.no_grad():
        model.transformer.h[0].attn.c_attn.weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="logits are not finite .* its weights are broken"):
        generate_text(model, "Hello", 5)


def test_negative_lengths_are_refused():
    model = GPT(SMALL)
    with pytest.raises(ValueError, match="max_new_tokens must be 0 or more, got -1"):
        generate(model, torch.tensor([[1, 2]]), max_new_tokens=-1)
    assert generate(model, torch.tensor([[1, 2]]), max_new_tokens=0).tolist() == [[1, 2]]
    with pytest.raises(ValueError, match="max_length must be a positive number of tokens, got -3"):
        SpamDataset([(0, "hello")], max_length=-3)
    with pytest.raises(ValueError, match="max_length must be a positive number of tokens, got 0"):
        classify(to_classifier(GPT(SMALL), 2), "hello", max_length=0)
    with pytest.raises(ValueError, match="allowed_max_length must be a positive number of tokens, got -1"):
        collate([[1, 2, 3]], allowed_max_length=-1)


def test_instruction_entries_with_a_missing_key_name_the_entry():
    good = {"instruction": "Say hi.", "input": "", "output": "Hi."}
    with pytest.raises(ValueError, match="instruction entry 1 has no 'output' key "
                                         "\\(it has \\['input', 'instruction'\\]\\)"):
        InstructionDataset([good, {"instruction": "Say bye.", "input": ""}])
    with pytest.raises(ValueError, match="instruction entry 0 is a str"):
        InstructionDataset(["Say hi."])
    with pytest.raises(ValueError, match="'output' must be text, got int"):
        format_example({"instruction": "Count.", "output": 3})


@pytest.mark.parametrize("ids, message", [
    ([1.5, 2.0, 3.0, 4.0], "must be a flat sequence of integers"),
    ([1, -2, 3, 4], "token ids cannot be negative, got -2"),
    ([[1, 2], [3, 4]], "must be a flat sequence of integers"),
])
def test_gpt_dataset_refuses_ids_that_are_not_token_ids(ids, message):
    with pytest.raises(ValueError, match=message):
        GPTDataset(ids, max_length=2, stride=1)


def test_a_relative_mirror_path_counts_from_the_project_root(tmp_path, monkeypatch):
    """The README's `export SCRATCHGPT_DATA_MIRROR=../shared/data` must work inside a notebook, whose
    working folder is the notebook's own."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "the-verdict.txt").write_bytes(fetch("the-verdict.txt").read_bytes())
    data = tmp_path / "data"
    monkeypatch.setenv(MIRROR_ENV, os.path.relpath(mirror, REPO_ROOT))      # relative to the root only
    monkeypatch.chdir(REPO_ROOT / "notebooks" / "stage2_gpt_pretraining")
    assert not (REPO_ROOT / "notebooks" / "stage2_gpt_pretraining" / os.environ[MIRROR_ENV]).exists()
    assert fetch("the-verdict.txt", data_dir=data).read_text(encoding="utf-8").startswith("I HAD always")


@pytest.mark.parametrize("make, message", [
    (lambda: GPTConfig(n_head=0), "GPTConfig: n_head must be a whole number >= 1, got 0"),
    (lambda: GPTConfig(n_layer=-1), "GPTConfig: n_layer must be a whole number >= 1, got -1"),
    (lambda: GPTConfig(n_embd=76.8), "GPTConfig: n_embd must be a whole number >= 1, got 76.8"),
    (lambda: GPTConfig(dropout=1.0), r"dropout must be in \[0, 1\), got 1.0"),
    (lambda: LlamaConfig(num_attention_heads=0), "LlamaConfig: num_attention_heads must be a whole number"),
])
def test_model_configurations_are_checked_in_one_place(make, message):
    with pytest.raises(ValueError, match=message):
        make()
