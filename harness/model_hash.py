"""The sha256 of the model files a run loaded, streamed and cached per (path, size, mtime).

A GGUF model is its one file; a checkpoint directory is hashed like
``cd DIR && find . -type f ! -path '*/.*' -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum``:
the sha256 of the ``<sha256>  <relative path>`` lines of its regular files (hidden ones left out: caches
and markers that are not weights), in byte order of the path. Each file's digest is cached in
``<cache root>/model-hashes.json`` under its absolute path, size and mtime, so a 140 GB checkpoint is read
once, not on every run; a changed file (other size or mtime) is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from harness.errors import InputError
from harness.model_files import ModelFiles, cache_root

__all__ = ["CACHE_FILE", "CHUNK", "directory_sha256", "file_sha256", "model_sha256"]

CACHE_FILE = "model-hashes.json"
CHUNK = 8 << 20


class _Cache:
    """path -> [size, mtime_ns, sha256], read once and written back (atomically) when it grew."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.entries: dict[str, list[object]] = {}
        self.changed = False
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):  # a broken cache is only a cache: hash again
                self.entries = {}

    def digest(self, file: Path) -> str:
        key = str(file.absolute())
        try:
            stat = file.stat()
        except OSError as err:
            raise _unreadable(file, err) from None
        cached = self.entries.get(key)
        if isinstance(cached, list) and cached[:2] == [stat.st_size, stat.st_mtime_ns] and len(cached) == 3:
            return str(cached[2])
        value = _stream(file)
        self.entries[key] = [stat.st_size, stat.st_mtime_ns, value]
        self.changed = True
        return value

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".model-hashes.", dir=self.path.parent)
            with os.fdopen(fd, "w") as handle:
                json.dump(self.entries, handle)
            os.replace(temp, self.path)
        except OSError:  # a read-only cache directory only costs hashing again next time
            return


def _unreadable(file: Path, err: OSError) -> InputError:
    return InputError(f"cannot read model file {file} to hash it: {err.strerror or err}",
                      hint="check the model path and the file's permissions")


def _stream(file: Path) -> str:
    digest = hashlib.sha256()
    try:
        with file.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    except OSError as err:
        raise _unreadable(file, err) from None
    return digest.hexdigest()


def _cache(enabled: bool) -> _Cache:
    return _Cache(cache_root() / CACHE_FILE if enabled else None)


def file_sha256(file: Path, use_cache: bool = True) -> str:
    """sha256 of one file (cached by absolute path, size and mtime)."""
    cache = _cache(use_cache)
    value = cache.digest(file)
    cache.save()
    return value


def _files(directory: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / n for n in names if not n.startswith(".") and (Path(root) / n).is_file()]
    return sorted(found, key=lambda p: os.fsencode(p.relative_to(directory).as_posix()))


def directory_sha256(directory: Path, use_cache: bool = True) -> str:
    """sha256 over the sorted `<sha256>  <relative path>` lines of a directory's regular, non-hidden files."""
    cache = _cache(use_cache)
    lines = "".join(f"{cache.digest(f)}  {f.relative_to(directory).as_posix()}\n" for f in _files(directory))
    cache.save()
    return hashlib.sha256(lines.encode()).hexdigest()


def model_sha256(files: ModelFiles, use_cache: bool = True) -> tuple[str, str]:
    """(what was hashed, its sha256): the GGUF file of a GGUF model, else the checkpoint directory."""
    if files.gguf_file:
        target = files.directory / files.gguf_file
        return str(target), file_sha256(target, use_cache)
    return str(files.directory), directory_sha256(files.directory, use_cache)
