"""The SUT core: LoadGen queries in, backend requests out, rule-abiding responses back to LoadGen.

Rules enforced here for every backend (mlperf-rules.md §5.3, §6.5):
- the response holds the generated ids trimmed at the first EOS (one EOS kept), as int32;
- n_tokens == len(response) >= 2 (LoadGen logs an ERROR for n_tokens < 2);
- Server/Interactive: FirstTokenComplete precedes QuerySamplesComplete, and the final buffer starts with
  the token that was reported first.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.backends.base import Backend
from harness.types import GenerationRequest, Sample


class Completer(Protocol):
    """Where the SUT reports to; implemented by harness.loadgen.LoadGenCompleter (and test recorders)."""

    def first_token(self, response_id: int, token_id: int) -> None:
        """Report a sample's first token (int32)."""

    def complete(self, response_id: int, token_ids: Sequence[int]) -> None:
        """Report a sample's full response (int32 buffer, n_tokens = len)."""


class ProgressSink(Protocol):
    """Something that counts finished samples and tokens."""

    def advance(self, samples: int = 1, tokens: int = 0) -> None:
        """Record progress."""


def build_response(generated: Sequence[int], eos_token_id: int) -> list[int]:
    """Trim at the first EOS (kept once) and pad a too-short answer with EOS to n_tokens >= 2."""
    tokens = list(generated)
    with contextlib.suppress(ValueError):  # no EOS: max_new_tokens was reached
        del tokens[tokens.index(eos_token_id) + 1:]
    while len(tokens) < 2:
        tokens.append(eos_token_id)
    return tokens


def _trimmed_length(generated: Sequence[int], eos_token_id: int) -> int:
    tokens = list(generated)
    return tokens.index(eos_token_id) + 1 if eos_token_id in tokens else len(tokens)


@dataclass
class SampleRecord:
    """Timing of one sample, written to samples.jsonl."""

    qsl_idx: int
    request_id: int
    issued_ns: int
    first_token_ns: int | None = None
    completed_ns: int | None = None
    n_tokens: int = 0
    replica: int | None = None


@dataclass
class SutStats:
    """Counters the run manifest reports."""

    issued: int = 0
    completed: int = 0
    tokens: int = 0
    padded_short: int = 0
    first_token_mismatches: int = 0
    failures: list[str] = field(default_factory=list)


class SutCore:
    """Implements TokenSink for the backend and turns completions into LoadGen responses."""

    def __init__(self, samples: Sequence[Sample], backend: Backend, completer: Completer, eos_token_id: int,
                 streams_first_token: bool, progress: ProgressSink | None = None) -> None:
        self.samples = samples
        self.backend = backend
        self.completer = completer
        self.eos_token_id = eos_token_id
        self.streams_first_token = streams_first_token
        self.progress = progress
        self.records: dict[int, SampleRecord] = {}
        self.stats = SutStats()
        self.loaded: set[int] = set()
        self._first_sent: dict[int, int] = {}
        self._lock = threading.Lock()
        self._aborted = threading.Event()
        self._closed = False

    # --- QSL -------------------------------------------------------------------------------------------
    def load_samples(self, indices: Sequence[int]) -> None:
        """LoadGen's load callback: mark samples resident."""
        self.loaded.update(indices)

    def unload_samples(self, indices: Sequence[int]) -> None:
        """LoadGen's unload callback."""
        self.loaded.difference_update(indices)

    # --- issuing ---------------------------------------------------------------------------------------
    def make_requests(self, queries: Sequence[tuple[int, int]]) -> list[GenerationRequest]:
        """Record issue times and build backend requests for (response_id, qsl_idx) pairs."""
        now = time.monotonic_ns()
        requests = []
        with self._lock:
            for response_id, index in queries:
                self.records[response_id] = SampleRecord(index, response_id, now)
                requests.append(GenerationRequest(response_id, index, self.samples[index].input_ids,
                                                  self.streams_first_token))
            self.stats.issued += len(queries)
        return requests

    def submit(self, requests: list[GenerationRequest]) -> None:
        """Hand requests to the backend, or answer at once after an abort."""
        if self._aborted.is_set():
            for request in requests:
                self.complete(request.request_id, [])
            return
        self.backend.submit(requests, self)

    # --- TokenSink -------------------------------------------------------------------------------------
    def first_token(self, request_id: int, token_id: int) -> None:
        """Forward a first token once (Server/Interactive only)."""
        if not self.streams_first_token:
            return
        with self._lock:
            record = self.records.get(request_id)
            if self._closed or record is None or record.completed_ns is not None or request_id in self._first_sent:
                return
            self._first_sent[request_id] = int(token_id)
            self.records[request_id].first_token_ns = time.monotonic_ns()
        self.completer.first_token(request_id, int(token_id))

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        """Build the rule-abiding response and report it."""
        response = build_response(token_ids, self.eos_token_id)
        with self._lock:
            record = self.records.get(request_id)
            if self._closed or record is None or record.completed_ns is not None:
                return  # late answer after an abort, or a duplicate: LoadGen must not hear of it again
        if self.streams_first_token:
            self._ensure_first_token(request_id, response)
        with self._lock:
            if record.completed_ns is not None:
                return
            record.completed_ns = time.monotonic_ns()
            record.n_tokens = len(response)
            self.stats.completed += 1
            self.stats.tokens += len(response)
            self.stats.padded_short += int(_trimmed_length(token_ids, self.eos_token_id) < 2)
        self.completer.complete(request_id, response)
        if self.progress is not None:
            self.progress.advance(1, len(response))

    def fail(self, request_id: int, error: BaseException) -> None:
        """A backend failure: remember it (the run is failed) and still answer LoadGen."""
        if not self._aborted.is_set():
            with self._lock:
                self.stats.failures.append(f"request {request_id}: {error}")
        self.complete(request_id, [])

    def _ensure_first_token(self, request_id: int, response: list[int]) -> None:
        with self._lock:
            sent = self._first_sent.get(request_id)
        if sent is None:
            self.first_token(request_id, response[0])
        elif sent != response[0]:
            with self._lock:
                self.stats.first_token_mismatches += 1

    # --- control ---------------------------------------------------------------------------------------
    def abort(self) -> None:
        """Stop generating: cancel the backend and answer everything outstanding at once."""
        self._aborted.set()
        self.backend.cancel_all()
        with self._lock:
            outstanding = [rid for rid, rec in self.records.items() if rec.completed_ns is None]
        for request_id in outstanding:
            self.complete(request_id, [])

    @property
    def aborted(self) -> bool:
        """True after abort()."""
        return self._aborted.is_set()

    def close(self) -> None:
        """After the LoadGen test: ignore whatever a backend still reports."""
        with self._lock:
            self._closed = True

    def flush(self) -> None:
        """LoadGen's flush callback (nothing is buffered)."""
