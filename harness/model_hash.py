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
import time
from collections.abc import Callable
from pathlib import Path

from harness.errors import InputError
from harness.model_files import ModelFiles, cache_root

__all__ = ["CACHE_FILE", "CHUNK", "HashProgress", "directory_sha256", "file_sha256", "model_sha256"]

CACHE_FILE = "model-hashes.json"
CHUNK = 8 << 20
HashProgress = Callable[[int, int], None]  # (bytes hashed so far, bytes to hash), every REPORT_S seconds
REPORT_S = 10.0


class _Cache:
    """path -> [size, mtime_ns, sha256], read once and written back (atomically) when it grew."""

    def __init__(self, path: Path | None, progress: HashProgress | None = None) -> None:
        self.path = path
        self.entries: dict[str, list[object]] = {}
        self.changed = False
        self.progress = progress
        self.to_hash = 0  # bytes of the files that are not cached (set by plan())
        self.hashed = 0
        self._reported = time.monotonic()
        if path is not None and path.is_file():
            try:
                loaded = json.loads(path.read_text())
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):  # a broken cache is only a cache: hash again
                self.entries = {}

    def _cached(self, file: Path) -> tuple[str | None, os.stat_result]:
        try:
            stat = file.stat()
        except OSError as err:
            raise _unreadable(file, err) from None
        cached = self.entries.get(str(file.absolute()))
        if isinstance(cached, list) and cached[:2] == [stat.st_size, stat.st_mtime_ns] and len(cached) == 3:
            return str(cached[2]), stat
        return None, stat

    def plan(self, files: list[Path]) -> None:
        """Count the bytes still to hash, and say so once when there are many (a first run on a checkpoint)."""
        self.to_hash = sum(stat.st_size for cached, stat in map(self._cached, files) if cached is None)
        if self.progress is not None and self.to_hash:
            self.progress(0, self.to_hash)

    def _advance(self, count: int) -> None:
        self.hashed += count
        if self.progress is not None and time.monotonic() - self._reported >= REPORT_S:
            self._reported = time.monotonic()
            self.progress(self.hashed, self.to_hash)

    def digest(self, file: Path) -> str:
        key = str(file.absolute())
        cached, stat = self._cached(file)
        if cached is not None:
            return cached
        value = _stream(file, self._advance)
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


def _stream(file: Path, advance: Callable[[int], None]) -> str:
    digest = hashlib.sha256()
    try:
        with file.open("rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
                advance(len(block))
    except OSError as err:
        raise _unreadable(file, err) from None
    return digest.hexdigest()


def _cache(enabled: bool, progress: HashProgress | None = None) -> _Cache:
    return _Cache(cache_root() / CACHE_FILE if enabled else None, progress)


def file_sha256(file: Path, use_cache: bool = True, progress: HashProgress | None = None) -> str:
    """sha256 of one file (cached by absolute path, size and mtime)."""
    cache = _cache(use_cache, progress)
    cache.plan([file])
    value = cache.digest(file)
    cache.save()
    return value


def _files(directory: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root) / n for n in names if not n.startswith(".") and (Path(root) / n).is_file()]
    return sorted(found, key=lambda p: os.fsencode(p.relative_to(directory).as_posix()))


def directory_sha256(directory: Path, use_cache: bool = True, progress: HashProgress | None = None) -> str:
    """sha256 over the sorted `<sha256>  <relative path>` lines of a directory's regular, non-hidden files."""
    cache = _cache(use_cache, progress)
    files = _files(directory)
    cache.plan(files)
    lines = "".join(f"{cache.digest(f)}  {f.relative_to(directory).as_posix()}\n" for f in files)
    cache.save()
    return hashlib.sha256(lines.encode()).hexdigest()


def model_sha256(files: ModelFiles, use_cache: bool = True,
                 progress: HashProgress | None = None) -> tuple[str, str]:
    """(what was hashed, its sha256): the GGUF file of a GGUF model, else the checkpoint directory. `progress`
    hears (0, total) before uncached bytes are read and (done, total) every REPORT_S seconds while they are."""
    if files.gguf_file:
        target = files.directory / files.gguf_file
        return str(target), file_sha256(target, use_cache, progress)
    return str(files.directory), directory_sha256(files.directory, use_cache, progress)
