import pytest
import torch

from scratchgpt import EOT_ID
from scratchgpt.instruction import (
    FUNCTION_WORDS,
    IGNORE_INDEX,
    InstructionDataset,
    collate,
    content_f1,
    content_words,
    exact_match,
    extract_response,
    format_example,
    format_input,
    load_instructions,
    normalize,
    rouge_l,
    score_responses,
    split_instructions,
    token_f1,
)


def test_data_and_split():
    data = load_instructions()
    assert len(data) == 1100 and sum(1 for e in data if not e["input"]) == 775
    train, test, val = split_instructions(data)
    assert (len(train), len(test), len(val)) == (935, 110, 55)
    assert split_instructions(data) == (train, test, val)


def test_prompt_format_with_and_without_input():
    with_input = format_input({"instruction": "Fix the spelling.", "input": "freind", "output": "friend"})
    without = format_input({"instruction": "Name a colour.", "input": "", "output": "Red."})
    assert with_input.endswith("### Instruction:\nFix the spelling.\n\n### Input:\nfreind")
    assert "### Input" not in without and without.endswith("### Instruction:\nName a colour.")
    assert format_example({"instruction": "Name a colour.", "input": "", "output": "Red."}).endswith(
        "### Response:\nRed.")


def test_collate_pads_shifts_and_ignores_padding():
    x, y = collate([[1, 2, 3, 4, 5], [6, 7], [8, 9, 10]])
    assert x.tolist() == [[1, 2, 3, 4, 5], [6, 7, EOT_ID, EOT_ID, EOT_ID], [8, 9, 10, EOT_ID, EOT_ID]]
    assert y.tolist() == [[2, 3, 4, 5, EOT_ID],
                          [7, EOT_ID, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],   # first <|endoftext|> kept
                          [9, 10, EOT_ID, IGNORE_INDEX, IGNORE_INDEX]]


def test_collate_masks_the_prompt_and_truncates():
    # (tokens, prompt length): the first 3 tokens are the prompt, so targets 0 and 1 (tokens 1, 2) are masked
    x, y = collate([([1, 2, 3, 4, 5], 3), ([6, 7, 8], 2)], mask_prompt=True)
    assert y.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 4, 5, EOT_ID],
                          [IGNORE_INDEX, 8, EOT_ID, IGNORE_INDEX, IGNORE_INDEX]]
    x, y = collate([[1, 2, 3, 4, 5]], allowed_max_length=3)
    assert x.tolist() == [[1, 2, 3]] and y.tolist() == [[2, 3, 4]]


def test_padding_does_not_change_the_loss():
    torch.manual_seed(0)
    logits = torch.randn(1, 6, 50257)
    x1, y1 = collate([[1, 2, 3]])
    x2, y2 = collate([[1, 2, 3], [4, 5, 6, 7, 8, 9]])
    loss = torch.nn.functional.cross_entropy
    assert y2.shape == (2, 6)
    l1 = loss(logits[:, :3].flatten(0, 1), y1.flatten())
    l2 = loss(logits[:, :6].flatten(0, 1), y2[:1].flatten())
    assert torch.allclose(l1, l2)


def test_dataset_prompt_lengths():
    entry = {"instruction": "Name a colour.", "input": "", "output": "Red."}
    ds = InstructionDataset([entry])
    ids, prompt_len = ds[0]
    assert 0 < prompt_len < len(ids)
    from scratchgpt import gpt2_tokenizer
    assert gpt2_tokenizer().decode(ids[prompt_len:]) == "Red."


@pytest.mark.parametrize("generated,expected", [
    ("PROMPT\n\n### Response:\nThe capital is Paris.", "The capital is Paris."),
    ("PROMPT\n\n### Response:\n  Paris.<|endoftext|>garbage", "Paris."),
    ("PROMPT\n\n### Response:\nParis.\n\n### Instruction:\nmore", "Paris."),
    ("PROMPT", ""),
])
def test_extract_response(generated, expected):
    assert extract_response(generated, "PROMPT") == expected


def test_content_f1_ignores_the_words_every_response_shares():
    # hand-worked: content words 'capital paris' vs 'paris capital france': 2 common, P = 1, R = 2/3 -> F1 0.8
    assert content_words("The capital is Paris.") == ["capital", "paris"]
    assert content_f1("The capital is Paris.", "Paris is the capital of France.") == pytest.approx(0.8)
    # a response of function words only: token F1 rewards the shared 'is', content F1 gives nothing
    # token F1: 'is' in common, P = 1/5, R = 1/3 -> 0.25
    assert token_f1("It is what it is.", "Paris is the capital.") == pytest.approx(0.25)
    assert content_f1("It is what it is.", "Paris is the capital.") == 0.0
    # nothing but function words on both sides: as token_f1, two empty lists agree
    assert content_f1("It is.", "Is it?") == 1.0 and content_f1("It is.", "Berlin") == 0.0
    # plain lower-case words, as normalize() leaves them (it drops the articles itself)
    assert all(w.isalpha() and normalize(w) in (w, "") for w in FUNCTION_WORDS)
    assert not {"capital", "paris", "formula", "density", "water"} & FUNCTION_WORDS


def test_metrics_on_hand_made_pairs():
    assert normalize("The  Cat, sat!") == "cat sat"
    assert exact_match("The cat sat.", "cat sat") == 1.0 and exact_match("a dog", "cat") == 0.0
    # prediction 'cat sat down' vs reference 'cat sat on mat': 2 common words, P=2/3, R=2/4
    assert token_f1("cat sat down", "cat sat on mat") == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("dog", "cat") == 0.0
    # LCS of 'a b c d' and 'a c b d' (after normalising away nothing) is 3
    assert rouge_l("w x y z", "w y x z") == pytest.approx(0.75)
    assert rouge_l("cat sat", "cat sat") == 1.0 and rouge_l("dog", "cat") == 0.0
    # order matters to ROUGE-L
    assert token_f1("sat cat", "cat sat") == 1.0 and rouge_l("sat cat", "cat sat") == 0.5
    scores = score_responses(["Paris.", "red"], ["paris", "blue"])
    assert scores == {"exact_match": 0.5, "token_f1": 0.5, "content_f1": 0.5, "rouge_l": 0.5}
    with pytest.raises(ValueError):
        score_responses(["a"], [])


def test_token_f1_and_rouge_l_agree_with_google_rouge_score():
    """token F1 is ROUGE-1's F-measure and rouge_l is ROUGE-L's, as Google's `rouge-score` computes them
    (an independent implementation), on the same normalised words: every instruction against its
    reference output, and each reference against itself reversed and with a word dropped."""
    rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")

    class Words:                                           # rouge-score's tokenizer interface
        def tokenize(self, text):
            return normalize(text).split()

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=Words())
    pairs = []
    for e in load_instructions()[:300]:
        words = e["output"].split()
        pairs += [(e["instruction"] + " " + e["input"], e["output"]), (" ".join(words[::-1]), e["output"]),
                  (" ".join(words[1:]), e["output"])]
    pairs = [(p, r) for p, r in pairs if normalize(p) and normalize(r)]   # rouge-score gives 0 to empty text
    assert len(pairs) > 800
    for prediction, reference in pairs:
        theirs = scorer.score(reference, prediction)      # rouge-score takes (target, prediction)
        assert token_f1(prediction, reference) == pytest.approx(theirs["rouge1"].fmeasure, abs=1e-12)
        assert rouge_l(prediction, reference) == pytest.approx(theirs["rougeL"].fmeasure, abs=1e-12)
