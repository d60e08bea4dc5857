"""Per-sample output cache: an interrupted accuracy run resumes by serving finished samples from disk.

`CachedBackend` wraps any Backend. Each output the wrapped backend completes is appended, as one JSON line
``{"qsl_idx": i, "tokens": [...]}``, to ``<config.cache>/<key>.jsonl`` and fsync'd before the SUT sees it.
A later run with the same key serves those samples at once from the file (LoadGen still issues every
sample) and forwards only the rest to the wrapped backend. The key (`cache_key`) covers everything that
decides the generated tokens: the effective config minus where the run is written, the dataset sha256,
the model files' identity and the harness version, so a changed input never reuses stale outputs.

A torn last line (the process was killed mid-write) is ignored. The composition point
(harness.distributed.replicas.wrap_with_cache) enables the cache only in accuracy mode and only when
``config.cache`` names a directory; the manifest's ``details.output_cache`` says how many samples came
from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from harness.backends.base import Backend, BackendInfo, BackendReport, Completion, SinkWrapper, TokenSink
from harness.model_files import resolve_model
from harness.types import GenerationRequest

__all__ = ["NOT_IN_KEY", "CachedBackend", "OutputCache", "cache_key", "harness_version", "model_identity"]

# Config keys that say where or how a run is written, never what it generates.
NOT_IN_KEY = {"output_dir", "overwrite", "cache", "loadgen", "mode", "compliance_test"}


def harness_version() -> str:
    """The installed mlperf-llm-harness version ("unknown" when not installed)."""
    try:
        return metadata.version("mlperf-llm-harness")
    except metadata.PackageNotFoundError:
        return "unknown"


def model_identity(path: str | None) -> list[tuple[str, int, int]]:
    """(file name, size, mtime_ns) of every model file: cheap, and changes when a file is replaced."""
    files = resolve_model(path)
    if files.gguf_file:
        candidates = [files.directory / files.gguf_file]
    else:
        candidates = sorted(p for p in files.directory.rglob("*") if p.is_file())
    identity = []
    for candidate in candidates:
        stat = candidate.stat()
        identity.append((str(candidate.relative_to(files.directory)), stat.st_size, stat.st_mtime_ns))
    return identity


def cache_key(config: dict[str, Any], dataset_sha256: str, model_path: str | None, reads_model: bool) -> str:
    """sha256 over the inputs that decide a run's generated tokens: the config as JSON data (without the
    NOT_IN_KEY keys), the dataset hash, the model files' identity (when the backend reads them), the version."""
    inputs = {
        "config": {key: value for key, value in config.items() if key not in NOT_IN_KEY},
        "dataset_sha256": dataset_sha256,
        "model": model_identity(model_path) if reads_model else [],
        "harness": harness_version(),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


class OutputCache:
    """Append-only JSONL of qsl_idx -> generated token ids; every write is flushed and fsync'd."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries = self._read(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = path.open("a")
        self._lock = threading.Lock()

    @staticmethod
    def _read(path: Path) -> dict[int, list[int]]:
        entries: dict[int, list[int]] = {}
        if not path.is_file():
            return entries
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                entries[int(record["qsl_idx"])] = [int(t) for t in record["tokens"]]
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill mid-write; that sample is generated again
        return entries

    def get(self, qsl_idx: int) -> list[int] | None:
        """Cached tokens of a sample, or None."""
        return self.entries.get(qsl_idx)

    def put(self, qsl_idx: int, tokens: Sequence[int]) -> None:
        """Append one sample's tokens durably."""
        self.put_many([(qsl_idx, tokens)])

    def put_many(self, entries: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Append several samples' tokens durably (one fsync)."""
        converted = [(qsl_idx, [int(t) for t in tokens]) for qsl_idx, tokens in entries]
        lines = "".join(json.dumps({"qsl_idx": qsl_idx, "tokens": tokens}, separators=(",", ":")) + "\n"
                        for qsl_idx, tokens in converted)
        with self._lock:
            if self._handle.closed:
                return
            # A torn line left by an earlier kill must not swallow these records.
            self._handle.write(("\n" if self._needs_newline() else "") + lines)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.entries.update(converted)

    def _needs_newline(self) -> bool:
        size = self.path.stat().st_size
        if size == 0:
            return False
        with self.path.open("rb") as handle:
            handle.seek(size - 1)
            return handle.read(1) != b"\n"

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._handle.close()


class _RecordingSink(SinkWrapper):
    """Stores each completion in the cache, then forwards it to the SUT."""

    def __init__(self, sink: TokenSink, cache: OutputCache, sample_of: dict[int, int]) -> None:
        super().__init__(sink)
        self.cache = cache
        self.sample_of = sample_of

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        self.cache.put_many([(self.sample_of.pop(request_id), token_ids) for request_id, token_ids in completions])
        self.sink.complete_batch(completions)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        self.complete_batch(list(zip(request_ids, np.asarray(rows).tolist(), strict=True)))

    def fail(self, request_id: int, error: BaseException) -> None:
        self.sample_of.pop(request_id, None)
        self.sink.fail(request_id, error)


class CachedBackend:
    """Serves cached samples from its own thread and forwards the others to the wrapped backend."""

    def __init__(self, inner: Backend, cache: OutputCache, key: str) -> None:
        self.inner = inner
        self.cache = cache
        self.key = key
        self.served = 0
        self.generated = 0
        self._sink: TokenSink | None = None
        self._sample_of: dict[int, int] = {}  # request id -> QSL index of every miss in flight
        self._queue: queue.Queue[list[GenerationRequest] | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self, sink: TokenSink) -> BackendInfo:
        """Start the wrapped backend (its results are recorded on their way to `sink`), then the hit server."""
        self._sink = sink
        info = self.inner.start(_RecordingSink(sink, self.cache, self._sample_of))
        self._thread = threading.Thread(target=self._serve_hits, name="output-cache", daemon=True)
        self._thread.start()
        return info

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """The wrapped backend's warm-up."""
        return self.inner.warm_up(longest_prompt, batch_sizes)

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Split requests into cache hits (served here) and misses (generated by the wrapped backend)."""
        hits = [r for r in requests if self.cache.get(r.sample_index) is not None]
        misses = [r for r in requests if self.cache.get(r.sample_index) is None]
        self.served += len(hits)
        self.generated += len(misses)
        if hits:
            self._queue.put(hits)
        if misses:
            self._sample_of.update((r.request_id, r.sample_index) for r in misses)
            self.inner.submit(misses)

    def cancel_all(self) -> None:
        """Cancel the wrapped backend's queued work (hits are answered anyway, instantly)."""
        self.inner.cancel_all()

    def stop(self) -> None:
        """Stop the serving thread and the wrapped backend; close the cache file."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)
            self._thread = None
        self.inner.stop()
        self.cache.close()

    def report(self) -> BackendReport:
        """The wrapped backend's report, plus what the manifest records under details.output_cache."""
        return self.inner.report().with_section("output_cache", {
            "file": str(self.cache.path), "key": self.key, "served_from_cache": self.served,
            "generated": self.generated})

    def _serve_hits(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            requests, sink = item, self._sink
            assert sink is not None
            answers = [(request.request_id, self.cache.get(request.sample_index) or []) for request in requests]
            sink.first_tokens([(request.request_id, tokens[0])
                               for request, (_, tokens) in zip(requests, answers, strict=True)
                               if request.want_first_token and tokens])
            sink.complete_batch(answers)
