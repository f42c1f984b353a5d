"""Byte-level byte-pair encoding (BPE) from scratch, as GPT-2 does it.

Text is first cut into pre-tokens by GPT-2's regular expression (words with their leading space,
numbers, punctuation runs, whitespace), so merges never cross a word boundary. Each pre-token is a
sequence of bytes, so any script (English, Korean, emoji) is covered without an unknown token. BPE
then repeatedly merges the adjacent pair with the best (lowest) rank.

`BPETokenizer.train` learns merges from a text; `BPETokenizer.from_gpt2` loads GPT-2's own merges
(`vocab.bpe`) and ids (`encoder.json`), and then encodes exactly as tiktoken's "gpt2" encoding does.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import regex

# GPT-2's pre-tokenization pattern (from OpenAI's encoder.py).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, used to store byte tokens as text.

    Printable Latin-1 bytes map to themselves; the rest (control bytes, space) are shifted to
    code points from 256 up, so ' ' is stored as 'Ġ' and '\\n' as 'Ċ' in `vocab.bpe`.
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(
        range(ord("®"), ord("ÿ") + 1))
    mapping, shift = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


class BPETokenizer:
    """A byte-level BPE tokenizer: 256 byte tokens, ranked merges, and special tokens."""

    def __init__(self, byte_ids: list[int], merges: dict[tuple[int, int], tuple[int, int]],
                 special_tokens: dict[str, int], pattern: str = GPT2_PATTERN):
        self.byte_ids = byte_ids              # byte value -> token id
        self.merges = merges                  # (left id, right id) -> (rank, merged id)
        self.special_tokens = special_tokens  # e.g. {"<|endoftext|>": 50256}
        self.pattern = regex.compile(pattern)
        self.vocab = {i: bytes([b]) for b, i in enumerate(byte_ids)}  # token id -> its bytes
        for (left, right), (_, merged) in sorted(merges.items(), key=lambda kv: kv[1][0]):
            self.vocab[merged] = self.vocab[left] + self.vocab[right]
        self._cache: dict[str, list[int]] = {}

    @property
    def n_vocab(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    # ---- learning merges -------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: tuple[str, ...] = (EOT,)) -> BPETokenizer:
        """Learn `vocab_size - 256 - len(special_tokens)` merges from `text`.

        Each round counts every adjacent pair over all pre-tokens (weighted by how often the
        pre-token occurs), merges the most frequent pair everywhere, and gives it the next id.
        Ties go to the smaller pair, so training is deterministic.
        """
        n_merges = vocab_size - 256 - len(special_tokens)
        if n_merges < 0:
            raise ValueError(f"vocab_size must be at least {256 + len(special_tokens)} "
                             "(256 bytes + specials)")
        words = Counter(regex.findall(GPT2_PATTERN, text))
        seqs = {w: list(w.encode("utf-8")) for w in words}
        merges: dict[tuple[int, int], tuple[int, int]] = {}
        for rank in range(n_merges):
            pairs = Counter()
            for w, ids in seqs.items():
                for pair in zip(ids, ids[1:]):
                    pairs[pair] += words[w]
            if not pairs:
                break  # every pre-token is a single token already
            best = min(pairs, key=lambda p: (-pairs[p], p))
            merges[best] = (rank, 256 + rank)
            seqs = {w: _merge(ids, best, 256 + rank) for w, ids in seqs.items()}
        specials = {tok: 256 + len(merges) + i for i, tok in enumerate(special_tokens)}
        return cls(list(range(256)), merges, specials)

    # ---- GPT-2's merges --------------------------------------------------------------------
    @classmethod
    def from_gpt2(cls, vocab_bpe: str | Path | None = None,
                  encoder_json: str | Path | None = None) -> BPETokenizer:
        """GPT-2's tokenizer from its two files (fetched through the data manifest by default)."""
        if vocab_bpe is None or encoder_json is None:
            from .data import fetch

            vocab_bpe, encoder_json = fetch("vocab.bpe"), fetch("encoder.json")
        encoder = json.loads(Path(encoder_json).read_text(encoding="utf-8"))  # token text -> id
        lines = Path(vocab_bpe).read_text(encoding="utf-8").splitlines()
        byte_ids = [encoder[ch] for ch in bytes_to_unicode().values()]
        merges = {}
        for rank, line in enumerate(ln for ln in lines[1:] if ln.strip()):  # line 0 is a version header
            left, right = line.split()
            merges[(encoder[left], encoder[right])] = (rank, encoder[left + right])
        return cls(byte_ids, merges, {EOT: encoder[EOT]})

    # ---- encoding and decoding -------------------------------------------------------------
    def encode(self, text: str, allowed_special: set[str] | frozenset[str] = frozenset()) -> list[int]:
        """Token ids of `text`. Special tokens in the text must be allowed, as in tiktoken."""
        for special in self.special_tokens:
            if special in text and special not in allowed_special:
                raise ValueError(f"text contains the special token {special!r}; "
                                 f"pass allowed_special={{{special!r}}}")
        ids: list[int] = []
        for piece, special in _split_on_specials(text, allowed_special):
            if special:
                ids.append(self.special_tokens[piece])
            else:
                for word in self.pattern.findall(piece):
                    ids.extend(self._encode_word(word))
        return ids

    def decode(self, ids: list[int]) -> str:
        inverse_specials = {i: s for s, i in self.special_tokens.items()}
        data = b"".join(inverse_specials[i].encode() if i in inverse_specials else self.vocab[i] for i in ids)
        return data.decode("utf-8", errors="replace")

    def _encode_word(self, word: str) -> list[int]:
        if word not in self._cache:
            ids = [self.byte_ids[b] for b in word.encode("utf-8")]
            while len(ids) > 1:
                # the adjacent pair with the lowest merge rank goes first
                pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, (float("inf"),))[0])
                if pair not in self.merges:
                    break
                ids = _merge(ids, pair, self.merges[pair][1])
            self._cache[word] = ids
        return self._cache[word]


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids`, left to right, by `new_id`."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _split_on_specials(text: str, allowed: set[str] | frozenset[str]):
    """Yield (piece, is_special) with the allowed special tokens cut out of the text."""
    if not allowed:
        yield text, False
        return
    parts = regex.split("(" + "|".join(regex.escape(s) for s in sorted(allowed)) + ")", text)
    for i, part in enumerate(parts):
        if part:
            yield part, i % 2 == 1
