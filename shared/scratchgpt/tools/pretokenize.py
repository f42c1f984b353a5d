"""Pre-tokenized corpora: tokenize a text corpus once, train on it many times.

    python -m scratchgpt.pretokenize tinyshakespeare.txt --out runs/tokens/tinyshakespeare

Each input (a file name from the data manifest, or a path) is a document. The last `val_fraction`
of each document, cut at a line boundary, goes to the validation split, the rest to training;
documents are separated by `<|endoftext|>`. Tokens are written as `uint16` (GPT-2's 50,257 ids fit)
into shard files of at most `shard_tokens` tokens, `train_000000.bin`, ..., `val_000000.bin`, each
with a 64-byte header:

    magic  b"SGPTSHRD" | version u32 | token count u64 | vocabulary size u32 | crc32 of the tokens u32
    | tokenizer name (36 bytes, zero-padded)

All little-endian. The trainer opens shards with `read_shard`, a memory map: a corpus larger than
the machine's memory is read from disk as it is needed. A shard whose header, size or checksum does
not match is refused with a `ShardError` that names the problem.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..data import DataError, atomic_write_bytes, fetch, load_manifest

MAGIC = b"SGPTSHRD"
VERSION = 1
HEADER = struct.Struct("<8sIQII36s")  # 64 bytes
SPLITS = ("train", "val")
INCOMPLETE = "INCOMPLETE"  # stands in a shard folder while pretokenize replaces its shards
CHUNK_CHARS = 1 << 20  # text is tokenized in pieces of about 1 MB, cut where the tokens stay the same


class ShardError(DataError):
    """A shard file that is not what its header says: wrong magic, truncated, or corrupted."""


def write_shard(path: str | Path, tokens: np.ndarray, tokenizer: str = "gpt2",
                vocab_size: int = 50257) -> Path:
    """Write `tokens` (ids below 65,536) as one shard, atomically."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= min(vocab_size, 1 << 16)):
        raise ValueError(f"token ids must lie in [0, {min(vocab_size, 1 << 16)}) to be stored as uint16")
    body = tokens.astype("<u2").tobytes()
    name = tokenizer.encode("ascii")
    if len(name) > 36:
        raise ValueError(f"tokenizer name {tokenizer!r} is longer than 36 characters")
    header = HEADER.pack(MAGIC, VERSION, tokens.size, vocab_size, zlib.crc32(body), name)
    atomic_write_bytes(Path(path), header + body)
    return Path(path)


def read_header(path: str | Path) -> dict:
    """A shard's header as a dict, after checking the magic, version and file size."""
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise ShardError(f"{path.name}: {len(raw)} bytes, shorter than the {HEADER.size}-byte shard header "
                         "(truncated?)")
    magic, version, count, vocab_size, crc, name = HEADER.unpack(raw)
    if magic != MAGIC:
        raise ShardError(f"{path.name} is not a token shard (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ShardError(f"{path.name} has shard format version {version}; "
                         f"this package reads version {VERSION}")
    expected = HEADER.size + 2 * count
    size = path.stat().st_size
    if size != expected:
        raise ShardError(f"{path.name}: the header promises {count:,} tokens ({expected:,} bytes) "
                         f"but the file has {size:,} bytes "
                         f"({'truncated' if size < expected else 'trailing data'}); "
                         "write it again with `python -m scratchgpt.pretokenize`")
    return {"tokens": count, "vocab_size": vocab_size, "crc32": crc,
            "tokenizer": name.rstrip(b"\0").decode("ascii")}


def read_shard(path: str | Path, verify: bool = True) -> np.ndarray:
    """The shard's tokens as a read-only uint16 memory map; `verify` also checks the crc32."""
    path = Path(path)
    header = read_header(path)
    tokens = np.memmap(path, dtype="<u2", mode="r", offset=HEADER.size, shape=(header["tokens"],)) \
        if header["tokens"] else np.zeros(0, dtype="<u2")
    if verify:
        crc = zlib.crc32(tokens.tobytes()) if header["tokens"] else zlib.crc32(b"")
        if crc != header["crc32"]:
            raise ShardError(f"{path.name}: the tokens' crc32 {crc:08x} differs from the header's "
                             f"{header['crc32']:08x}: the file is corrupted; write it again")
        if header["tokens"] and int(tokens.max()) >= header["vocab_size"]:
            raise ShardError(f"{path.name} holds token id {int(tokens.max())}, "
                             f"beyond its vocabulary of {header['vocab_size']}")
    return tokens


def shard_paths(folder: str | Path, split: str) -> list[Path]:
    """The shards of `split` in `folder`, in order; a clear error when there are none."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = Path(folder)
    if (folder / INCOMPLETE).exists():
        raise ShardError(f"{folder} holds an incomplete set of shards "
                         "(pretokenize was cut short while replacing "
                         "them, or is running now): run it again")
    paths = sorted(folder.glob(f"{split}_*.bin"))
    if not paths:
        raise ShardError(f"no {split}_*.bin shards in {folder}; make them with "
                         f"`python -m scratchgpt.pretokenize CORPUS --out {folder}`")
    listing = folder / "tokens.json"
    if listing.exists():
        listed = [s["file"] for s in json.loads(listing.read_text())[split]["shards"]]
        if [p.name for p in paths] != listed:
            raise ShardError(f"the {split} shards in {folder} are not the ones its tokens.json lists "
                             f"({len(paths)} found, {len(listed)} listed): run pretokenize again")
    return paths


def safe_cuts(text: str, every: int) -> list[int]:
    """Cut points about `every` characters apart where tokenizing the pieces gives the same tokens as
    the whole: before a single space, or just after a single newline, between two non-space
    characters (GPT-2's pre-tokenizer never joins a token across such a place)."""
    cuts, start = [], 0
    while len(text) - start > every:
        i = start + every
        while i < len(text) and not _safe(text, i):
            i += 1
        if i >= len(text):
            break
        cuts.append(i)
        start = i
    return cuts


def _safe(text: str, i: int) -> bool:
    if i < 2 or i + 1 >= len(text):
        return False
    if text[i] == " ":
        return not text[i - 1].isspace() and not text[i + 1].isspace()
    return text[i - 1] == "\n" and not text[i - 2].isspace() and not text[i].isspace()


def _split_point(text: str, val_fraction: float) -> int:
    """Where the validation part starts: the first safe cut at or after (1 - val_fraction) of the text."""
    if val_fraction <= 0:
        return len(text)
    i = max(2, int(len(text) * (1 - val_fraction)))
    while i < len(text) and not _safe(text, i):
        i += 1
    return i


class _ShardWriter:
    """Collects tokens and writes a shard each time `shard_tokens` have come in."""

    def __init__(self, folder: Path, split: str, shard_tokens: int, tokenizer: str, vocab_size: int):
        self.folder, self.split, self.shard_tokens = folder, split, shard_tokens
        self.tokenizer, self.vocab_size = tokenizer, vocab_size
        self.buffer: list[int] = []
        self.shards: list[dict] = []

    def add(self, ids: list[int]) -> None:
        self.buffer.extend(ids)
        while len(self.buffer) >= self.shard_tokens:
            self._write(self.buffer[: self.shard_tokens])
            self.buffer = self.buffer[self.shard_tokens:]

    def close(self) -> None:
        if self.buffer or not self.shards:
            self._write(self.buffer)
        self.buffer = []

    def _write(self, ids: list[int]) -> None:
        path = self.folder / f"{self.split}_{len(self.shards):06d}.bin"
        write_shard(path, np.array(ids, dtype=np.int64), self.tokenizer, self.vocab_size)
        self.shards.append({"file": path.name, "tokens": len(ids)})


def pretokenize(inputs: list[str | Path], out: str | Path, val_fraction: float = 0.1,
                shard_tokens: int = 100_000_000, progress: bool = True) -> dict:
    """Tokenize `inputs` with GPT-2's tokenizer into shards in `out`; returns the summary it writes
    to `out/tokens.json` (shards, token counts, sources)."""
    from ..tokenizer import gpt2_tokenizer

    if not inputs:
        raise ValueError("give at least one text file (a manifest name or a path) to tokenize")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if shard_tokens < 1:
        raise ValueError(f"shard_tokens must be positive, got {shard_tokens}")
    enc = gpt2_tokenizer()
    out = Path(out)
    paths = [_resolve(i) for i in inputs]
    # every file decodes, and something is in them, before anything is written
    texts = [_read(p) for p in paths]
    if not any(t.strip() for t in texts):
        raise ValueError(f"nothing to tokenize: {', '.join(p.name for p in paths)} "
                         f"{'is' if len(paths) == 1 else 'are'} empty; "
                         f"the shards in {out} are left as they were")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".pretokenize-*"):          # the scratch folder of a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    # Shards are written into a scratch folder and moved in at the end. While old shards are being
    # replaced by new ones, the marker file INCOMPLETE stands in the folder, and `shard_paths` refuses
    # a folder that has it: a crash in between can never leave a mix of old and new shards in use.
    work = Path(tempfile.mkdtemp(dir=out, prefix=".pretokenize-"))
    try:
        summary = _tokenize(paths, texts, work, val_fraction, shard_tokens, progress, enc)
        (out / INCOMPLETE).touch()
        (out / "tokens.json").unlink(missing_ok=True)
        for old in list(out.glob("train_*.bin")) + list(out.glob("val_*.bin")):
            old.unlink()
        for new in work.iterdir():
            new.replace(out / new.name)
        atomic_write_bytes(out / "tokens.json", (json.dumps(summary, indent=1) + "\n").encode())
        (out / INCOMPLETE).unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); "
                         "convert it to UTF-8 first") from None


def _tokenize(paths: list[Path], texts: list[str], out: Path, val_fraction: float, shard_tokens: int,
              progress: bool, enc) -> dict:
    from ..tokenizer import EOT, EOT_ID

    writers = {s: _ShardWriter(out, s, shard_tokens, "gpt2", enc.n_vocab) for s in SPLITS}
    total_chars = sum(p.stat().st_size for p in paths)
    bar = tqdm(total=total_chars, unit="B", unit_scale=True, desc="tokenizing", disable=not progress)
    for n, (path, text) in enumerate(zip(paths, texts)):
        split_at = _split_point(text, val_fraction)
        for split, part in (("train", text[:split_at]), ("val", text[split_at:])):
            if n and part:
                writers[split].add([EOT_ID])  # documents are separated by <|endoftext|>
            bounds = [0, *safe_cuts(part, CHUNK_CHARS), len(part)]
            pieces = [part[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]
            for ids in enc.encode_batch(pieces, allowed_special={EOT}):
                writers[split].add(ids)
        bar.update(path.stat().st_size)
    bar.close()
    for w in writers.values():
        w.close()
    return {"tokenizer": "gpt2", "vocab_size": enc.n_vocab, "val_fraction": val_fraction,
            "sources": [p.name for p in paths],
            **{s: {"tokens": sum(x["tokens"] for x in w.shards), "shards": w.shards}
               for s, w in writers.items()}}


def _resolve(item: str | Path) -> Path:
    """A manifest name is fetched (checksummed); anything else must be an existing file."""
    if str(item) in load_manifest():
        return fetch(str(item))
    path = Path(item)
    if not path.is_file():
        raise FileNotFoundError(f"{item} is neither a file nor a name in data/manifest.json")
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scratchgpt.pretokenize",
                                     description="Tokenize text files with GPT-2's tokenizer "
                                                 "into uint16 shards.")
    parser.add_argument("inputs", nargs="+", help="text files: names from data/manifest.json or paths")
    parser.add_argument("--out", required=True, help="folder for the shards and tokens.json")
    parser.add_argument("--val-fraction", type=float, default=0.1,
                        help="end of each document kept for validation")
    parser.add_argument("--shard-tokens", type=int, default=100_000_000, help="tokens per shard file")
    args = parser.parse_args(argv)
    s = pretokenize(args.inputs, args.out, args.val_fraction, args.shard_tokens)
    print(f"{s['train']['tokens']:,} training tokens in {len(s['train']['shards'])} shard(s), "
          f"{s['val']['tokens']:,} validation tokens in {len(s['val']['shards'])} shard(s) -> {args.out}")


if __name__ == "__main__":
    main()
