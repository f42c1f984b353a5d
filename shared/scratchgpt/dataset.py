"""Input/target pairs for next-token prediction, cut from one long token sequence.

A window of `max_length` tokens is the input; the same window shifted one token to the right is the
target, so every position of the window is one prediction. Windows start every `stride` tokens:
`stride == max_length` gives non-overlapping windows, a smaller stride overlapping ones.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from .tokenizer import EOT, gpt2_tokenizer


class GPTDataset(Dataset):
    """Sliding windows over `token_ids`: item i is (ids[s:s+L], ids[s+1:s+L+1]) with s = i * stride."""

    def __init__(self, token_ids: list[int] | torch.Tensor, max_length: int, stride: int):
        if max_length < 1 or stride < 1:
            raise ValueError(f"max_length and stride must be positive, got {max_length} and {stride}")
        ids = torch.as_tensor(token_ids)
        if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError("token_ids must be a flat sequence of integers, "
                             f"got a {tuple(ids.shape)} {ids.dtype} tensor")
        if len(ids) and ids.min() < 0:
            raise ValueError(f"token ids cannot be negative, got {ids.min().item()}")
        self.ids = ids.long()
        if len(self.ids) < max_length + 1:
            raise ValueError(
                f"the text has {len(self.ids)} tokens, too few for one window of max_length={max_length} "
                f"(a window needs max_length + 1 = {max_length + 1} tokens: "
                "the inputs plus one shifted target); "
                "use a longer text or a smaller max_length"
            )
        self.max_length, self.stride = max_length, stride
        # the last window must leave room for its shifted target
        self.starts = range(0, len(self.ids) - max_length, stride)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.starts[i]
        return self.ids[s : s + self.max_length], self.ids[s + 1 : s + self.max_length + 1]


def create_dataloader(text: str, batch_size: int = 4, max_length: int = 256, stride: int = 128,
                      shuffle: bool = True, drop_last: bool = True, num_workers: int = 0,
                      tokenizer=None, seed: int | None = None) -> DataLoader:
    """Tokenize `text` with GPT-2's BPE and batch its sliding windows.

    With `drop_last=True` a text with fewer windows than `batch_size` would give a loader that yields
    nothing at all, and a training loop over it would silently do nothing; that is an error here.
    """
    tokenizer = tokenizer or gpt2_tokenizer()
    dataset = GPTDataset(tokenizer.encode(text, allowed_special={EOT}), max_length, stride)
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"only {len(dataset)} windows of max_length={max_length}, stride={stride} "
            f"for batch_size={batch_size}: "
            "with drop_last=True the loader would be empty; lower batch_size, max_length or stride"
        )
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                      num_workers=num_workers, generator=generator)


def split_text(text: str, train_ratio: float) -> tuple[str, str]:
    """Training and validation parts of a text, split at a character position."""
    cut = int(train_ratio * len(text))
    return text[:cut], text[cut:]
