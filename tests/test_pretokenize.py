"""Pre-tokenized shards: the round trip, the header, and clear errors for damaged files."""

import json
import struct

import numpy as np
import pytest

from scratchgpt import gpt2_tokenizer, read_text
from scratchgpt.tools.pretokenize import (
    HEADER,
    ShardError,
    pretokenize,
    read_header,
    read_shard,
    safe_cuts,
    shard_paths,
    write_shard,
)
from scratchgpt.tools.pretrain import TokenStream


@pytest.fixture(scope="module")
def tokens(tmp_path_factory):
    out = tmp_path_factory.mktemp("verdict")
    pretokenize(["the-verdict.txt"], out, progress=False)
    return out


@pytest.fixture(scope="module")
def shakespeare(tmp_path_factory):
    out = tmp_path_factory.mktemp("tokens")
    summary = pretokenize(["tinyshakespeare.txt"], out, val_fraction=0.1, shard_tokens=100_000,
                          progress=False)
    return out, summary


def test_round_trip_on_tinyshakespeare(shakespeare):
    out, summary = shakespeare
    text = read_text("tinyshakespeare.txt")
    assert summary["train"]["tokens"] + summary["val"]["tokens"] == 338_025   # as tokenizing the whole text
    assert [s["tokens"] for s in summary["train"]["shards"]] == [100_000, 100_000, 100_000, 1_974]
    assert json.loads((out / "tokens.json").read_text()) == summary
    ids = {split: np.concatenate([read_shard(p) for p in shard_paths(out, split)])
           for split in ("train", "val")}
    enc = gpt2_tokenizer()
    train_text, val_text = enc.decode(ids["train"].tolist()), enc.decode(ids["val"].tolist())
    assert train_text + val_text == text
    assert abs(len(val_text) / len(text) - 0.1) < 0.001                    # the last tenth, cut at a line
    assert np.array_equal(np.concatenate([ids["train"], ids["val"]]), enc.encode(text))


def test_header(shakespeare):
    out, _ = shakespeare
    header = read_header(out / "val_000000.bin")
    assert header["tokens"] == 36_051 and header["vocab_size"] == 50257 and header["tokenizer"] == "gpt2"
    assert (out / "val_000000.bin").stat().st_size == HEADER.size + 2 * 36_051
    assert read_shard(out / "val_000000.bin").dtype == np.uint16


def test_safe_cuts_keep_the_tokens():
    text = read_text("the-verdict.txt")
    enc = gpt2_tokenizer()
    bounds = [0, *safe_cuts(text, 300), len(text)]
    assert len(bounds) > 50
    pieces = [t for a, b in zip(bounds, bounds[1:]) for t in enc.encode(text[a:b])]
    assert pieces == enc.encode(text)


def test_documents_are_separated_by_end_of_text(tmp_path):
    (tmp_path / "a.txt").write_text("First document.\nIt has two lines.")
    (tmp_path / "b.txt").write_text("Second document.\nAlso two lines.")
    pretokenize([tmp_path / "a.txt", tmp_path / "b.txt"], tmp_path / "out", val_fraction=0.0, progress=False)
    ids = read_shard(tmp_path / "out" / "train_000000.bin").tolist()
    assert gpt2_tokenizer().decode(ids) == ("First document.\nIt has two lines.<|endoftext|>"
                                            "Second document.\nAlso two lines.")


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) - 3], "truncated"),
    (lambda b: b[:100] + bytes([b[100] ^ 0xFF]) + b[101:], "crc32"),
    (lambda b: b"NOTASHRD" + b[8:], "not a token shard"),
    (lambda b: b[:20], "shorter than"),
    (lambda b: b + b"\0\0", "trailing data"),
])
def test_damaged_shards_are_clear_errors(tmp_path, damage, message):
    path = write_shard(tmp_path / "train_000000.bin", np.arange(1000) % 50257)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ShardError, match=message):
        read_shard(path)


def test_ids_beyond_the_vocabulary(tmp_path):
    with pytest.raises(ValueError, match="token ids must lie in"):
        write_shard(tmp_path / "x.bin", np.array([1, 50257]))
    path = write_shard(tmp_path / "x.bin", np.array([1, 2, 3]), vocab_size=3 + 1)
    raw = bytearray(path.read_bytes())
    raw[8 + 4 + 8: 8 + 4 + 8 + 4] = struct.pack("<I", 3)   # the header now claims a 3-token vocabulary
    path.write_bytes(bytes(raw))
    with pytest.raises(ShardError, match="beyond its vocabulary"):
        read_shard(path)


def test_missing_shards_and_bad_input(tmp_path):
    with pytest.raises(ShardError, match="python -m scratchgpt.pretokenize"):
        shard_paths(tmp_path, "train")
    with pytest.raises(FileNotFoundError, match="neither a file nor a name"):
        pretokenize(["no-such-corpus.txt"], tmp_path, progress=False)


def test_stream_reads_across_shards_and_wraps(shakespeare):
    out, _ = shakespeare
    stream = TokenStream(shard_paths(out, "train"))
    whole = np.concatenate([read_shard(p) for p in shard_paths(out, "train")]).astype(np.int64)
    assert stream.size == len(whole) == 301_974
    assert np.array_equal(stream.read(99_990, 25), whole[99_990:100_015])   # crosses a shard boundary
    x, y, nxt = stream.batch(99_000, batch_size=2, context=8, rank=1, world=2)
    assert nxt == 99_000 + 2 * 2 * 8
    assert np.array_equal(x.numpy().ravel(), whole[99_016:99_032]) \
        and np.array_equal(y.numpy().ravel(), whole[99_017:99_033])
    # too close to the end: a new epoch
    x, _, nxt = stream.batch(stream.size - 10, batch_size=2, context=8)
    assert nxt == 16 and np.array_equal(x.numpy().ravel(), whole[:16])
    with pytest.raises(ValueError, match="a global batch needs"):
        stream.batch(0, batch_size=1000, context=1024)


def test_pretokenize_refuses_empty_input_and_keeps_the_shards(tmp_path, tokens):
    out = tmp_path / "shards"
    pretokenize(["the-verdict.txt"], out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(ValueError, match="nothing to tokenize: empty.txt is empty; "
                                         "the shards in .* are left as they were"):
        pretokenize([empty], out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_pretokenize_names_a_file_that_is_not_utf8(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8 text \\(byte 3"):
        pretokenize([bad], tmp_path / "out", progress=False)


def test_a_crash_while_replacing_shards_leaves_no_set_that_can_be_used(tmp_path, monkeypatch):
    out = tmp_path / "shards"
    pretokenize(["the-verdict.txt"], out, progress=False)
    real_replace = type(out).replace
    moved = []

    def crash_after_one(self, target):
        if moved:
            raise OSError("disk full")
        moved.append(self)
        return real_replace(self, target)

    monkeypatch.setattr(type(out), "replace", crash_after_one)
    with pytest.raises(OSError, match="disk full"):
        pretokenize(["tinyshakespeare.txt"], out, progress=False, val_fraction=0.5)
    monkeypatch.undo()
    with pytest.raises(ShardError, match="incomplete set of shards"):
        shard_paths(out, "train")
    pretokenize(["the-verdict.txt"], out, progress=False)     # running it again mends the folder
    assert shard_paths(out, "train") and not list(out.glob(".pretokenize-*"))
