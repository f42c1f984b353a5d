"""GPT-2's byte-pair encoding through tiktoken, working offline.

tiktoken normally downloads GPT-2's `vocab.bpe` and `encoder.json` on first use. Here both come from
the data fetcher (checksummed, mirror or cache first), and are placed where tiktoken looks for its
cache, so that a plain `tiktoken.get_encoding("gpt2")` works offline too. tiktoken is told each file's
sha256 wherever it reads one, so a damaged copy in its cache is replaced, never used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import tiktoken

from .data import copy_verified, fetch, load_manifest

EOT = "<|endoftext|>"
EOT_ID = 50256
# The URLs tiktoken's own gpt2 definition reads; its cache key for each is the sha1 of the URL.
_TIKTOKEN_SOURCES = {
    "vocab.bpe": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
    "encoder.json": "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
}


def tiktoken_cache_dir() -> Path | None:
    """The folder tiktoken reads its downloads from (its own rule); None when its cache is switched off."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var]) if os.environ[var] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def install_tiktoken_cache() -> Path:
    """Place GPT-2's two files in tiktoken's cache so `tiktoken.get_encoding("gpt2")` needs no network."""
    cache = tiktoken_cache_dir()
    if cache is None:
        raise RuntimeError("tiktoken's cache is switched off (TIKTOKEN_CACHE_DIR is empty); unset it")
    for name, url in _TIKTOKEN_SOURCES.items():
        copy_verified(name, cache / hashlib.sha1(url.encode()).hexdigest())
    return cache


@lru_cache(maxsize=1)
def gpt2_tokenizer() -> tiktoken.Encoding:
    """tiktoken's GPT-2 encoding (50,257 tokens, `<|endoftext|>` = 50256), built from the manifest's files."""
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    # tiktoken keeps its own copy of any file it reads, keyed by the path alone: without the expected
    # sha256, a truncated or edited copy there would be read instead of our verified file (a bare
    # JSONDecodeError or AssertionError). With it, tiktoken drops a copy that does not match and rereads.
    manifest = load_manifest()
    ranks = data_gym_to_mergeable_bpe_ranks(str(fetch("vocab.bpe")), str(fetch("encoder.json")),
                                            vocab_bpe_hash=manifest["vocab.bpe"]["sha256"],
                                            encoder_json_hash=manifest["encoder.json"]["sha256"])
    if tiktoken_cache_dir() is not None:
        install_tiktoken_cache()
    return tiktoken.Encoding(
        name="gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
        special_tokens={EOT: EOT_ID}, explicit_n_vocab=50257,
    )


def encode_text(text: str, tokenizer: tiktoken.Encoding | None = None) -> list[int]:
    """Token ids of user text (a message, an instruction), where `<|endoftext|>` is just characters.

    tiktoken refuses text that spells a special token unless told what to do; data from the outside
    (an SMS, an instruction) may contain that string, and it must not end the text for the model.
    """
    tokenizer = tokenizer or gpt2_tokenizer()
    return tokenizer.encode(text, disallowed_special=())


def text_to_ids(text: str, tokenizer: tiktoken.Encoding | None = None):
    """Token ids of `text` as a (1, T) tensor, `<|endoftext|>` allowed."""
    import torch

    tokenizer = tokenizer or gpt2_tokenizer()
    return torch.tensor(tokenizer.encode(text, allowed_special={EOT})).unsqueeze(0)


def ids_to_text(ids, tokenizer: tiktoken.Encoding | None = None) -> str:
    """Text of a (T,) or (1, T) tensor or list of token ids."""
    tokenizer = tokenizer or gpt2_tokenizer()
    if hasattr(ids, "tolist"):
        ids = ids.squeeze(0).tolist()
    return tokenizer.decode(list(ids))
