"""The SUT core: LoadGen queries in, backend requests out, rule-abiding responses back to LoadGen.

Rules enforced here for every backend (mlperf-rules.md §5.3, §6.5):
- the response holds the generated ids trimmed at the first EOS (one EOS kept), as int32;
- n_tokens == len(response) >= 2 (LoadGen logs an ERROR for n_tokens < 2);
- Server/Interactive: FirstTokenComplete precedes QuerySamplesComplete, and the final buffer starts with
  the token that was reported first.
"""

from __future__ import annotations

import array
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from harness.backends.base import Backend, BackendInfo, packed_response_lengths, response_lengths
from harness.sut.records import SampleTable
from harness.types import GenerationRequest, RequestBatch, Sample, request_ids_of

__all__ = ["Completer", "ProgressSink", "SutCore", "SutStats", "build_response"]


class Completer(Protocol):
    """Where the SUT reports to; implemented by harness.loadgen.LoadGenCompleter (and test recorders)."""

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """Report first tokens, as (response_id, token_id) pairs, in one call."""

    def complete_buffer(self, response_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """Report full responses in one call: response k is buffer[offsets[k]:offsets[k] + lengths[k]]
        (int32; n_tokens = its length; offsets and lengths are int64 arrays)."""


class ProgressSink(Protocol):
    """Something that counts finished samples and tokens."""

    def advance(self, samples: int = 1, tokens: int = 0) -> None:
        """Record progress."""


def build_response(generated: Sequence[int], eos_token_id: int, stops: frozenset[int] = frozenset()) -> Sequence[int]:
    """Trim at the first EOS or other stop id (kept once) and pad a too-short answer with EOS to n_tokens >= 2.

    A list or an int32 array keeps its type (an array's int32 buffer then reaches LoadGen without a copy
    through Python ints); anything else becomes a list.
    """
    keep = isinstance(generated, list) or (isinstance(generated, array.array) and generated.typecode == "i")
    tokens = generated if keep else list(generated)
    if stops:
        end = next((i + 1 for i, t in enumerate(tokens) if t == eos_token_id or t in stops), len(tokens))
    else:
        try:
            end = tokens.index(eos_token_id) + 1
        except ValueError:  # no EOS: max_new_tokens was reached
            end = len(tokens)
    if end < len(tokens):
        tokens = tokens[:end]
    if len(tokens) < 2:
        tokens = tokens[:]  # never extend the backend's own list
        while len(tokens) < 2:
            tokens.append(eos_token_id)
    return tokens


def _needs_padding(generated: Sequence[int], eos_token_id: int, stops: frozenset[int] = frozenset()) -> bool:
    """Whether trimming leaves fewer than 2 tokens: empty, one token, or EOS (or another stop id) first."""
    return len(generated) < 2 or generated[0] == eos_token_id or generated[0] in stops


@dataclass
class SutStats:
    """Counters the run manifest reports."""

    issued: int = 0
    completed: int = 0
    tokens: int = 0
    padded_short: int = 0
    first_token_mismatches: int = 0
    # LoadGen calls made: FirstTokenComplete and QuerySamplesComplete (one per backend batch, however many samples)
    first_token_calls: int = 0
    completion_calls: int = 0
    failures: list[str] = field(default_factory=list)


class SutCore:
    """Implements TokenSink for the backend and turns completions into LoadGen responses.

    Every backend result reaches LoadGen in the batch it came in: one FirstTokenComplete or
    QuerySamplesComplete call per backend batch, however many samples it holds. The request id a backend
    sees is the sample's ticket (its row in the SampleTable), not LoadGen's response id: a completion
    finds its sample by indexing, and the SUT maps it back to the response id LoadGen gave.
    """

    def __init__(self, samples: Sequence[Sample], backend: Backend, completer: Completer, eos_token_id: int | None,
                 streams_first_token: bool, progress: ProgressSink | None = None,
                 stop_token_ids: Sequence[int] = ()) -> None:
        self.samples = samples
        self.backend = backend
        self.completer = completer
        self.eos_token_id = -1 if eos_token_id is None else eos_token_id  # start_backend sets the backend's
        self.streams_first_token = streams_first_token
        self.stops = frozenset(int(i) for i in stop_token_ids)  # ids besides EOS that end an answer
        self.progress = progress
        self.records = SampleTable()
        self.stats = SutStats()
        self.loaded: set[int] = set()
        self._first_sent: dict[int, int] = {}
        self._lock = threading.Lock()
        self._aborted = threading.Event()
        self._closed = False

    def start_backend(self) -> BackendInfo:
        """Start the backend with this SUT as its sink; the SUT then trims at the backend's EOS."""
        info = self.backend.start(self)
        self.eos_token_id = info.eos_token_id
        return info

    # --- QSL -------------------------------------------------------------------------------------------
    def load_samples(self, indices: Sequence[int]) -> None:
        """LoadGen's load callback: mark samples resident."""
        self.loaded.update(indices)

    def unload_samples(self, indices: Sequence[int]) -> None:
        """LoadGen's unload callback."""
        self.loaded.difference_update(indices)

    # --- issuing ---------------------------------------------------------------------------------------
    def issue_columns(self, response_ids: list[int], sample_indices: list[int]) -> None:
        """LoadGen's issue callback: response ids and QSL indices, position by position."""
        raise NotImplementedError

    def register(self, response_ids: Sequence[int] | np.ndarray, sample_indices: Sequence[int] | np.ndarray,
                 issued_ns: int | None = None) -> range:
        """Record issued samples; returns their tickets (the request ids backends will see)."""
        now = time.monotonic_ns() if issued_ns is None else issued_ns
        with self._lock:
            tickets = self.records.add(response_ids, sample_indices, now)
            self.stats.issued += len(tickets)
        return tickets

    def requests(self, tickets: range, sample_indices: list[int]) -> RequestBatch:
        """Backend requests for registered samples."""
        return RequestBatch(list(tickets), sample_indices, self.samples, self.streams_first_token)

    def make_requests(self, response_ids: list[int], sample_indices: list[int], issued_ns: int | None = None
                      ) -> RequestBatch:
        """Record issue times and build backend requests."""
        return self.requests(self.register(response_ids, sample_indices, issued_ns), list(sample_indices))

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Hand requests to the backend, or answer at once after an abort."""
        if self._aborted.is_set():
            self.complete_batch([(request_id, []) for request_id in request_ids_of(requests)])
            return
        self.backend.submit(requests)

    # --- TokenSink -------------------------------------------------------------------------------------
    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """Forward first tokens, each once, in one call (Server/Interactive only)."""
        if not self.streams_first_token:
            return
        now = time.monotonic_ns()
        send = []
        with self._lock:
            if self._closed:
                return
            for ticket, token_id in firsts:
                row = self.records.open_row(ticket)
                if row is None or row in self._first_sent:
                    continue
                self._first_sent[row] = int(token_id)
                self.records.first_token_ns[row] = now
                send.append((int(self.records.response_id[row]), int(token_id)))
            self.stats.first_token_calls += bool(send)
        if send:
            self.completer.first_tokens(send)

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Build rule-abiding responses and report them: missing first tokens first, then one completion call."""
        buffer = array.array("i")
        offsets, lengths, padded = [], [], []
        for _, generated in completions:
            response = build_response(generated, self.eos_token_id, self.stops)
            offsets.append(len(buffer))
            lengths.append(len(response))
            padded.append(_needs_padding(generated, self.eos_token_id, self.stops))
            buffer.extend(response)  # an int32 array is copied as bytes, a list converted once
        self._report([request_id for request_id, _ in completions], np.frombuffer(buffer, dtype=np.int32),
                     np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64),
                     np.asarray(padded, dtype=bool))

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """Report a batch given as a matrix (one row of generated ids per request), without per-token work.

        Each response is its row up to and including the first EOS (the whole row when it has none); a row
        that would give fewer than 2 tokens takes the per-response path, which pads it.
        """
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[0] != len(request_ids):
            raise ValueError(f"rows has shape {rows.shape}; expected ({len(request_ids)}, width)")
        lengths = response_lengths(rows, self.eos_token_id, tuple(self.stops))
        short = lengths < 2
        if short.any():
            self.complete_batch([(request_ids[k], rows[k].tolist()) for k in np.flatnonzero(short)])
            keep = np.flatnonzero(~short)
            request_ids, rows, lengths = [request_ids[k] for k in keep], rows[keep], lengths[keep]
            if not request_ids:
                return
        if bool((lengths == rows.shape[1]).all()):  # every row is exactly its response: no gather needed
            buffer = np.ascontiguousarray(rows, dtype=np.int32).reshape(-1)
        else:
            buffer = np.ascontiguousarray(rows[np.arange(rows.shape[1]) < lengths[:, None]], dtype=np.int32)
        offsets = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        self._report(request_ids, buffer, offsets, lengths, None)

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """Report a batch packed in one int32 array (response k: buffer[offsets[k]:][:lengths[k]]) without per-token
        work: each response is cut after its first EOS (or other stop id); one that would be shorter than 2 tokens
        takes the per-response path, which pads it."""
        buffer = np.asarray(buffer, dtype=np.int32)
        offsets = np.asarray(offsets, dtype=np.int64)
        lengths = packed_response_lengths(buffer, offsets, lengths, self.eos_token_id, tuple(self.stops))
        short = lengths < 2
        if short.any():
            self.complete_batch([(request_ids[k], buffer[offsets[k]:offsets[k] + lengths[k]].tolist())
                                 for k in np.flatnonzero(short).tolist()])
            keep = np.flatnonzero(~short)
            request_ids, offsets, lengths = [request_ids[k] for k in keep.tolist()], offsets[keep], lengths[keep]
            if not request_ids:
                return
        self._report(request_ids, buffer, offsets, lengths, None)

    def _report(self, tickets: Sequence[int], buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                padded: np.ndarray | None) -> None:
        """Accept each response once (unknown, duplicate or post-test answers are dropped), then tell LoadGen."""
        now = time.monotonic_ns()
        firsts: list[tuple[int, int]] = []
        with self._lock:
            if self._closed:
                return  # late answers after the test: LoadGen must not hear of them
            accepted = self.records.finish(tickets, lengths, now)
            rows = np.asarray(tickets, dtype=np.int64)
            if len(accepted) < len(tickets):
                rows, offsets, lengths = rows[accepted], offsets[accepted], lengths[accepted]
                padded = padded[accepted] if padded is not None else None
            response_ids = self.records.response_id[rows].tolist()
            if self.streams_first_token and response_ids:
                for row, response_id, first in zip(rows.tolist(), response_ids, buffer[offsets].tolist(),
                                                   strict=True):
                    self._check_first_token(row, response_id, first, now, firsts)
            tokens = int(lengths.sum())
            self.stats.completed += len(response_ids)
            self.stats.tokens += tokens
            self.stats.padded_short += int(padded.sum()) if padded is not None else 0
            self.stats.first_token_calls += bool(firsts)
            self.stats.completion_calls += bool(response_ids)
        if firsts:
            self.completer.first_tokens(firsts)
        if not response_ids:
            return
        self.completer.complete_buffer(response_ids, buffer, offsets, lengths)
        if self.progress is not None:
            self.progress.advance(len(response_ids), tokens)

    def fail(self, request_id: int, error: BaseException) -> None:
        """A backend failure: remember it (the run is failed) and still answer LoadGen."""
        if not self._aborted.is_set():
            with self._lock:
                row = self.records.open_row(request_id)
                where = f"QSL sample {self.records.qsl_idx[row]}" if row is not None else f"request {request_id}"
                self.stats.failures.append(f"{where}: {error}")
        self.complete_batch([(request_id, [])])

    def _check_first_token(self, row: int, response_id: int, first: int, now: int,
                           firsts: list[tuple[int, int]]) -> None:
        """Under the lock: queue a first token that was never sent; count one that differs from the answer's."""
        sent = self._first_sent.get(row)
        if sent is None:
            self._first_sent[row] = first
            self.records.first_token_ns[row] = now
            firsts.append((response_id, first))
        elif sent != first:
            self.stats.first_token_mismatches += 1

    # --- control ---------------------------------------------------------------------------------------
    def abort(self) -> None:
        """Stop generating: cancel the backend and answer everything outstanding at once."""
        self._aborted.set()
        self.backend.cancel_all()
        with self._lock:
            outstanding = self.records.outstanding()
        self.complete_batch([(ticket, []) for ticket in outstanding])

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
