"""The data fetcher: cache, mirror, download, checksums, and atomic writes."""

import hashlib
import http.server
import threading

import pytest

from scratchgpt.data import MIRROR_ENV, DataError, fetch, load_manifest


def entry(name, payload, url):
    return {name: {"name": name, "url": url, "sha256": hashlib.sha256(payload).hexdigest(),
                   "size": len(payload), "license": "test"}}


UNREACHABLE = "http://127.0.0.1:9/none"  # the discard port: connection refused at once


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over a folder: real downloads without a network."""
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def no_leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")] == []


def test_manifest_lists_every_curriculum_file():
    manifest = load_manifest()
    assert {"the-verdict.txt", "tinyshakespeare.txt", "SMSSpamCollection", "instruction-data.json",
            "vocab.bpe", "encoder.json", "r50k_base.tiktoken"} <= set(manifest)
    for e in manifest.values():
        assert len(e["sha256"]) == 64 and e["size"] > 0 and e["license"] and e["url"].startswith("https://")
    assert manifest["SMSSpamCollection"]["member"] == "SMSSpamCollection"


def test_unknown_name_lists_known_ones(tmp_path):
    with pytest.raises(DataError, match="unknown data file 'nope.txt'.*the-verdict.txt"):
        fetch("nope.txt", data_dir=tmp_path)


def test_mirror_copy_is_verified_and_cached(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.txt").write_bytes(b"hello")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    cache = tmp_path / "cache"
    path = fetch("a.txt", data_dir=cache, manifest=entry("a.txt", b"hello", UNREACHABLE))
    assert path == cache / "a.txt" and path.read_bytes() == b"hello"
    # the cache now answers alone, even with the mirror gone
    monkeypatch.delenv(MIRROR_ENV)
    assert fetch("a.txt", data_dir=cache, manifest=entry("a.txt", b"hello", UNREACHABLE)).exists()


def test_mirror_with_wrong_checksum_is_an_error(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.txt").write_bytes(b"tampered")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    with pytest.raises(DataError, match="mirror's copy of a.txt .* has sha256"):
        fetch("a.txt", data_dir=tmp_path / "cache", manifest=entry("a.txt", b"hello", UNREACHABLE))
    assert not (tmp_path / "cache" / "a.txt").exists()


def test_missing_file_offline_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(DataError,
                       match=r"cannot get a.txt.*download from .* failed.*set SCRATCHGPT_DATA_MIRROR"):
        fetch("a.txt", data_dir=tmp_path, manifest=entry("a.txt", b"hello", UNREACHABLE))
    assert list(tmp_path.iterdir()) == []


def test_corrupt_cached_file_is_replaced_from_the_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.txt").write_bytes(b"hello")
    (tmp_path / "a.txt").write_bytes(b"hel")  # an old, truncated copy
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    assert fetch("a.txt", data_dir=tmp_path,
                 manifest=entry("a.txt", b"hello", UNREACHABLE)).read_bytes() == b"hello"


def test_download_verifies_and_writes_atomically(tmp_path, monkeypatch, server):
    root, base = server
    (root / "a.txt").write_bytes(b"hello")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    cache = tmp_path / "cache"
    assert fetch("a.txt", data_dir=cache,
                 manifest=entry("a.txt", b"hello", f"{base}/a.txt")).read_bytes() == b"hello"
    assert no_leftovers(cache)


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, monkeypatch, server):
    root, base = server
    (root / "a.txt").write_bytes(b"not hello")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with pytest.raises(DataError, match="a.txt has sha256"):
        fetch("a.txt", data_dir=tmp_path / "cache", manifest=entry("a.txt", b"hello", f"{base}/a.txt"))
    assert not (tmp_path / "cache").exists() or list((tmp_path / "cache").iterdir()) == []


def test_download_extracts_zip_member_and_tries_fallbacks(tmp_path, monkeypatch, server):
    import zipfile

    root, base = server
    with zipfile.ZipFile(root / "bundle.zip", "w") as z:
        z.writestr("inner.txt", "spam\tfree money")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    manifest = entry("inner.txt", b"spam\tfree money", UNREACHABLE)
    manifest["inner.txt"] |= {"member": "inner.txt", "fallback_urls": [f"{base}/bundle.zip"]}
    assert fetch("inner.txt", data_dir=tmp_path, manifest=manifest).read_bytes() == b"spam\tfree money"


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    """If writing fails half-way, neither a .part file nor a damaged target remains."""
    from scratchgpt import data

    target = tmp_path / "a.txt"
    target.write_bytes(b"old")

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(data.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        data.atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old" and no_leftovers(tmp_path)


def test_real_files_verify_through_the_mirror():
    """Every file the tiny profile needs is available (cache or mirror) with its checksum and size."""
    for name, e in load_manifest().items():
        if e.get("optional"):  # GPT-2 weights: fetched only by the profiles that use them
            continue
        path = fetch(name)
        assert path.stat().st_size == e["size"], name
