"""A sub-vocabulary: only the GPT-2 tokens that one text uses, numbered 0..n-1.

A narrow model spends most of its compute in the output head: the tiny profile's 128-wide model
has 0.8M weights in its four blocks and 6.4M in the head over GPT-2's 50,257 tokens, and the softmax
over 50,257 logits at every position comes on top. A model that only ever trains on and writes one
text needs a row for each token that text uses: about 1,400 for *The Verdict*, 11,706 for Tiny
Shakespeare. Its ids are the ranks of the used GPT-2 ids, so decoding maps back and tiktoken reads
the text as usual. The price: such a model cannot read any other token, so it cannot be fine-tuned
on other text (notebook 04 says which model the later notebooks build on, and why).
"""

from __future__ import annotations

import torch

GPT2_VOCAB_SIZE = 50257


def integer_ids(ids, what: str) -> torch.Tensor:
    """`ids` as a long tensor, refusing floats and booleans: `.long()` would turn 1.7 into id 1."""
    ids = torch.as_tensor(ids)
    # an empty list becomes a float tensor: nothing to coerce there
    if ids.numel() and (ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool):
        raise ValueError(f"{what} needs integer token ids, got {ids.dtype} of shape {tuple(ids.shape)}")
    return ids.long()


class SubVocabulary:
    """The sorted distinct GPT-2 ids of `token_ids`; `encode` maps GPT-2 ids to their ranks, `decode`
    maps ranks back."""

    def __init__(self, token_ids, vocab_size: int = GPT2_VOCAB_SIZE):
        if torch.as_tensor(token_ids).numel() == 0:
            raise ValueError("a sub-vocabulary needs a non-empty sequence of integer token ids")
        ids = integer_ids(token_ids, "a sub-vocabulary")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"GPT-2 token ids must lie in 0..{vocab_size - 1}, "
                             f"got {ids.min().item()}..{ids.max().item()}")
        self.gpt2_ids = torch.unique(ids)   # sorted, so a GPT-2 id's new id is its rank

    def __len__(self) -> int:
        return len(self.gpt2_ids)

    def encode(self, token_ids) -> torch.Tensor:
        """New ids (ranks) of GPT-2 ids, any shape; a GPT-2 id outside the sub-vocabulary is an error."""
        ids = integer_ids(token_ids, "encode")
        ranks = torch.searchsorted(self.gpt2_ids, ids).clamp(max=len(self) - 1)
        missing = self.gpt2_ids[ranks] != ids
        if missing.any():
            unknown = torch.unique(ids[missing])[:5].tolist()
            raise ValueError(f"{int(missing.sum())} token(s) are not in this sub-vocabulary of {len(self)} "
                             f"(GPT-2 ids {unknown}...): it only has the tokens of the text it was made from")
        return ranks

    def decode(self, new_ids) -> torch.Tensor:
        """GPT-2 ids of new ids, any shape (for `ids_to_text`)."""
        new_ids = integer_ids(new_ids, "decode")
        if new_ids.numel() and (new_ids.min() < 0 or new_ids.max() >= len(self)):
            raise ValueError(f"ids must lie in 0..{len(self) - 1} for this sub-vocabulary, "
                             f"got {new_ids.min().item()}..{new_ids.max().item()}")
        return self.gpt2_ids[new_ids]
