import pytest
import torch

from scratchgpt import gpt2_tokenizer, read_text
from scratchgpt.dataset import GPTDataset, create_dataloader


@pytest.mark.parametrize("max_length,stride", [(4, 1), (4, 4), (8, 3), (16, 16), (5, 11)])
def test_window_counts_and_shift(max_length, stride):
    ids = list(range(100, 200))  # 100 distinct tokens
    ds = GPTDataset(ids, max_length, stride)
    assert len(ds) == len(range(0, 100 - max_length, stride))
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.tolist() == ids[i * stride : i * stride + max_length]
        assert y.tolist() == ids[i * stride + 1 : i * stride + max_length + 1]  # shifted by one


def test_exactly_one_window():
    ds = GPTDataset([1, 2, 3, 4, 5], max_length=4, stride=1)
    assert len(ds) == 1 and ds[0][1].tolist() == [2, 3, 4, 5]


def test_too_short_text_is_an_error():
    with pytest.raises(ValueError, match="too few for one window of max_length=4"):
        GPTDataset([1, 2, 3, 4], max_length=4, stride=1)
    with pytest.raises(ValueError, match="too few"):
        create_dataloader("Hi there", batch_size=1, max_length=256)


def test_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="loader would be empty"):
        create_dataloader(read_text("the-verdict.txt")[:2000], batch_size=8, max_length=64, stride=64)


def test_loader_batches_real_text():
    text = read_text("the-verdict.txt")
    loader = create_dataloader(text, batch_size=8, max_length=4, stride=4, shuffle=False)
    x, y = next(iter(loader))
    assert x.shape == y.shape == (8, 4) and x.dtype == torch.long
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert x[0].tolist() == gpt2_tokenizer().encode(text)[:4]
    assert len(loader) == (5145 - 4 + 3) // 4 // 8


def test_split_text_cuts_at_a_character_position():
    from scratchgpt.dataset import split_text

    assert split_text("abcdefghij", 0.9) == ("abcdefghi", "j")
    assert split_text("abcdefghij", 0.3) == ("abc", "defghij")
