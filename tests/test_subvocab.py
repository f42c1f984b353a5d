import pytest
import torch

from scratchgpt.subvocab import SubVocabulary
from scratchgpt.tokenizer import gpt2_tokenizer


def test_a_hand_worked_sub_vocabulary():
    sub = SubVocabulary([50256, 5, 5, 900, 11])
    assert len(sub) == 4
    assert sub.gpt2_ids.tolist() == [5, 11, 900, 50256]
    assert sub.encode([900, 5, 50256, 11]).tolist() == [2, 0, 3, 1]
    assert sub.decode(torch.tensor([[3, 0], [1, 2]])).tolist() == [[50256, 5], [11, 900]]


def test_a_text_round_trips_and_matches_a_plain_dictionary():
    tok = gpt2_tokenizer()
    text = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer"
    ids = tok.encode(text)
    sub = SubVocabulary(ids)
    rank = {t: i for i, t in enumerate(sorted(set(ids)))}      # the same mapping, written independently
    assert sub.encode(ids).tolist() == [rank[t] for t in ids]
    assert tok.decode(sub.decode(sub.encode(ids)).tolist()) == text


def test_tokens_outside_it_are_refused_by_name():
    sub = SubVocabulary([5, 11])
    with pytest.raises(ValueError, match=r"not in this sub-vocabulary of 2 \(GPT-2 ids \[7, 50256\]"):
        sub.encode([5, 7, 50256])
    with pytest.raises(ValueError, match=r"ids must lie in 0..1"):
        sub.decode([2])
    with pytest.raises(ValueError, match="non-empty"):
        SubVocabulary([])
    with pytest.raises(ValueError, match="integer"):
        SubVocabulary([1.0, 2.0])


@pytest.mark.parametrize("make, message", [
    (lambda: SubVocabulary([-5, 3]), r"GPT-2 token ids must lie in 0..50256, got -5..3"),
    (lambda: SubVocabulary([60000]), r"GPT-2 token ids must lie in 0..50256, got 60000..60000"),
    (lambda: SubVocabulary([True, False]), "integer"),
    (lambda: SubVocabulary([5, 11]).decode([1.7]), "decode needs integer token ids, got torch.float32"),
    (lambda: SubVocabulary([5, 11]).encode([5.0]), "encode needs integer token ids"),
])
def test_ids_that_are_no_gpt2_ids_are_refused_not_coerced(make, message):
    with pytest.raises(ValueError, match=message):
        make()
