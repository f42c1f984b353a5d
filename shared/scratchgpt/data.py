"""Fetch the curriculum's data files by name, offline first, always checksummed.

`data/manifest.json` names every file with its canonical URL, sha256, size and license. `fetch(name)`
looks in three places, in order, and verifies the sha256 every time:

1. `data/<name>` (the download cache beside the manifest);
2. the folder named by the environment variable `SCRATCHGPT_DATA_MIRROR` (a local mirror: CI
   points it at a shared folder, a classroom can point it at a USB stick). A relative path is taken
   from the project's root, not from the working folder, so `export SCRATCHGPT_DATA_MIRROR=../shared/data`
   means the same in a shell at the root and in a notebook, whose working folder is its own;
3. the canonical URL (then the fallbacks), with a progress bar. A file that lives inside a zip
   archive is extracted from it.

Whatever is copied or downloaded is written to a temporary file first and moved into place only
once its checksum matches, so a partly written file never remains under its real name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from .paths import DATA_DIR, REPO_ROOT

MIRROR_ENV = "SCRATCHGPT_DATA_MIRROR"
MANIFEST = DATA_DIR / "manifest.json"


class DataError(RuntimeError):
    """A data file could not be had: unknown name, wrong checksum, or no copy and no network."""


def load_manifest(path: Path = MANIFEST) -> dict[str, dict]:
    """The manifest's entries by file name."""
    files = json.loads(Path(path).read_text(encoding="utf-8"))["files"]
    return {entry["name"]: entry for entry in files}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(name: str, *, data_dir: Path = DATA_DIR, manifest: dict[str, dict] | None = None) -> Path:
    """Return the path of the verified file `name` in `data_dir`, copying or downloading it there first."""
    manifest = load_manifest() if manifest is None else manifest
    if name not in manifest:
        raise DataError(f"unknown data file {name!r}; the manifest knows: {', '.join(sorted(manifest))}")
    entry = manifest[name]
    data_dir = Path(data_dir)
    target = data_dir / name
    problems = []

    if target.exists():
        got = sha256_of(target)
        if got == entry["sha256"]:
            return target
        problems.append(f"{target.name} in the data folder has sha256 {got[:12]}..., not the manifest's")

    mirror = mirror_dir()
    if mirror:
        source = mirror / name
        if source.exists():
            got = sha256_of(source)
            if got != entry["sha256"]:
                raise DataError(
                    f"the mirror's copy of {name} ({source}) has sha256 {got}, but the manifest expects "
                    f"{entry['sha256']}: replace it with the file from {entry['url']}"
                )
            with open(source, "rb") as f:
                _write_verified(f.read(), target, entry)
            return target
        problems.append(f"{MIRROR_ENV}={mirror} has no {name}")
    else:
        problems.append(f"{MIRROR_ENV} is not set")

    for url in [entry["url"], *entry.get("fallback_urls", [])]:
        try:
            payload = _download(url, desc=name)
        except OSError as err:  # URLError, timeouts and refused connections are all OSErrors
            problems.append(f"download from {url} failed ({err})")
            continue
        if "member" in entry:
            try:
                payload = zipfile.ZipFile(io.BytesIO(payload)).read(entry["member"])
            except (zipfile.BadZipFile, KeyError) as err:
                problems.append(f"{url} is not a zip with member {entry['member']!r} ({err})")
                continue
        try:
            _write_verified(payload, target, entry)
        except DataError as err:
            problems.append(str(err))
            continue
        return target

    raise DataError(
        f"cannot get {name}: " + "; ".join(problems) + ". To fix: download it from " + entry["url"]
        + (f" (member {entry['member']} of the zip)" if "member" in entry else "")
        + f" into {data_dir}, or set {MIRROR_ENV} to a folder that holds it."
    )


def mirror_dir() -> Path | None:
    """The folder `SCRATCHGPT_DATA_MIRROR` names; a relative path counts from the project root."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    return REPO_ROOT / mirror if not Path(mirror).is_absolute() else Path(mirror)


def read_text(name: str) -> str:
    """The verified file `name` as UTF-8 text."""
    return fetch(name).read_text(encoding="utf-8")


def _download(url: str, desc: str, timeout: float = 30.0) -> bytes:
    """Download `url` into memory with a progress bar (the curriculum's files are a few MB at most)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        buffer = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {desc}") as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                buffer.write(block)
                bar.update(len(block))
    if total is not None and buffer.tell() != total:
        raise OSError(f"connection closed after {buffer.tell()} of {total} bytes")
    return buffer.getvalue()


def _write_verified(payload: bytes, target: Path, entry: dict) -> None:
    """Write `payload` to `target` atomically, only if its sha256 is the manifest's."""
    got = hashlib.sha256(payload).hexdigest()
    if got != entry["sha256"]:
        raise DataError(f"{entry['name']} has sha256 {got}, but the manifest expects {entry['sha256']}")
    atomic_write_bytes(target, payload)


def atomic_write_bytes(target: Path, payload: bytes) -> None:
    """Write to a temporary file beside `target`, then rename it over `target` in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's mode
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def copy_verified(name: str, destination: Path) -> Path:
    """Copy the verified file `name` to `destination` (atomically); used to fill other tools' caches."""
    source = fetch(name)
    destination = Path(destination)
    if not destination.exists() or sha256_of(destination) != sha256_of(source):
        atomic_write_bytes(destination, source.read_bytes())
    return destination
