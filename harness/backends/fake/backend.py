"""Fake backends for tests and overhead benchmarks: echo, fixed-length and oracle answers, instantly.

Runs made with them are marked not submittable. They obey the Backend contract exactly (own worker
thread, first token before completion) so the SUT and LoadGen path is exercised for real. Without
delays the worker behaves like a batching backend: it takes everything queued, up to max_batch_size
requests, and reports their first tokens and answers with one batch call each. With a delay every
request is served alone, one after the other (slow runs for interrupt tests).
"""

from __future__ import annotations

import array
import queue
import sys
import time
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from harness.backends.base import BackendInfo, BackendReport, TokenSink
from harness.backends.fake.options import FakeOptions
from harness.backends.worker import RequestQueue
from harness.errors import BackendError
from harness.types import GenerationRequest, RequestBatch, request_ids_of, sample_indices_of

__all__ = ["AnswerMatrices", "FakeBackend", "fixed_answer"]

WARM_ANSWER_MATRICES = 8  # batches whose answers can wait for LoadGen at once before a new matrix is needed


@lru_cache(maxsize=64)
def _fixed_tail(length: int, eos_token_id: int) -> array.array[int]:
    body = [100 + (k * 7) % 20000 for k in range(1, max(length - 1, 0))]
    return array.array("i", [*(t if t != eos_token_id else t + 1 for t in body), eos_token_id])


def fixed_answer(sample_index: int, length: int, eos_token_id: int) -> array.array[int]:
    """A deterministic int32 answer of `length` tokens (EOS last) whose first token depends on the sample."""
    if length <= 1:
        return array.array("i", [eos_token_id])
    first = 100 + (sample_index * 31) % 20000
    return array.array("i", [first if first != eos_token_id else first + 1]) + _fixed_tail(length, eos_token_id)


class AnswerMatrices:
    """int32 matrices of fixed answers (one template row repeated), reused once nobody else holds them.

    A batch's answers are the first rows of an idle matrix with column 0 rewritten per sample, so serving a
    batch writes one column instead of a fresh matrix: fresh memory costs a page fault per 4 KiB on first
    touch, which would make the instant backend, not the harness, the slow part. A matrix is busy while any
    view of it is alive (the SUT's response buffer waiting for QuerySamplesComplete); CPython's reference
    count says when that is over. Used from the backend's worker thread only.
    """

    def __init__(self, template: np.ndarray, rows: int) -> None:
        self.template = template
        self.rows = rows
        self._matrices: list[np.ndarray] = []
        self._idle_refs = 0

    def reserve(self, count: int) -> None:
        """Have at least `count` matrices ready (allocated and filled now, not while serving)."""
        while len(self._matrices) < count:
            self._add()

    def take(self, count: int) -> np.ndarray:
        """A writable (count, width) view of an idle matrix (a new matrix when all are busy or too small)."""
        if count > self.rows:
            return np.repeat(self.template[None, :], count, axis=0)
        for k in range(len(self._matrices)):
            if sys.getrefcount(self._matrices[k]) <= self._idle_refs:
                return self._matrices[k][:count]
        return self._add()[:count]

    def _add(self) -> np.ndarray:
        self._matrices.append(np.repeat(self.template[None, :], self.rows, axis=0))
        self._idle_refs = sys.getrefcount(self._matrices[-1])  # the pool's own references, counted alike
        return self._matrices[-1]


class FakeBackend:
    """Answers every request from a worker thread with echo, fixed or oracle tokens."""

    def __init__(self, options: FakeOptions, max_new_tokens: int, oracle: list[list[int]] | None = None) -> None:
        self.options = options
        self.max_new_tokens = max_new_tokens
        self._oracle = oracle
        self._sink: TokenSink | None = None
        self._requests = RequestQueue("fake-backend")
        length = min(options.output_tokens, max_new_tokens)
        self._answers = AnswerMatrices(np.frombuffer(fixed_answer(0, length, options.eos_token_id), dtype=np.int32),
                                       options.max_batch_size)

    def start(self, sink: TokenSink) -> BackendInfo:
        """Keep the sink and start the worker thread (after the simulated load time)."""
        if self.options.start_delay_s:
            time.sleep(self.options.start_delay_s)
        self._sink = sink
        self._requests.start(self._work)
        return BackendInfo(name=f"fake ({self.options.behaviour})", eos_token_id=self.options.eos_token_id,
                           max_batch_size=self.options.max_batch_size, streaming=True, submittable=False,
                           device="none")

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Fixed answers: allocate the answer matrices that batches in flight will use."""
        if self.options.behaviour == "fixed" and self._instant:
            self._answers.reserve(WARM_ANSWER_MATRICES)
            return f"{WARM_ANSWER_MATRICES} answer matrices of {self.options.max_batch_size} rows ready"
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests for the worker."""
        if self._sink is None:
            raise BackendError("fake backend used before start()")
        self._requests.put(requests)

    def cancel_all(self) -> None:
        """Drop everything queued."""
        self._requests.cancel()

    def stop(self) -> None:
        """Stop the worker (after the simulated shutdown time)."""
        if self.options.stop_delay_s:
            time.sleep(self.options.stop_delay_s)
        self._requests.stop()

    def report(self) -> BackendReport:
        """Nothing beyond what the SUT counts."""
        return BackendReport()

    def answer(self, request: GenerationRequest) -> Sequence[int]:
        """The tokens this fake generates for a request (before the SUT trims them)."""
        eos = self.options.eos_token_id
        if self.options.behaviour == "echo":
            return [*list(request.input_ids)[: self.max_new_tokens - 1], eos]
        if self.options.behaviour == "oracle" and self._oracle is not None:
            return [*self._oracle[request.sample_index][: self.max_new_tokens - 1], eos]
        return fixed_answer(request.sample_index, min(self.options.output_tokens, self.max_new_tokens), eos)

    @property
    def _instant(self) -> bool:
        return not (self.options.delay_ms or self.options.first_token_delay_ms)

    def _work(self) -> None:
        batch = self.options.max_batch_size if self._instant else 1
        sink = self._sink
        assert sink is not None
        stopping = False
        while not stopping:
            jobs, stopping = self._drain()
            for requests in _merge_small_jobs(jobs, batch):
                for start in range(0, len(requests), batch):
                    chunk = requests[start:start + batch]
                    if self._requests.cancelled.is_set():
                        for request_id in request_ids_of(chunk):
                            sink.fail(request_id, RuntimeError("cancelled"))
                        continue
                    self._serve(chunk, sink)

    def _drain(self) -> tuple[list[Sequence[GenerationRequest]], bool]:
        """Wait for work, then take everything queued up to a stop marker; True when told to stop."""
        jobs = []
        item = self._requests.jobs.get()
        while item is not None:
            jobs.append(item)
            try:
                item = self._requests.jobs.get_nowait()
            except queue.Empty:
                return jobs, False
        return jobs, True

    def _serve(self, requests: Sequence[GenerationRequest], sink: TokenSink) -> None:
        if self.options.first_token_delay_ms:
            time.sleep(self.options.first_token_delay_ms / 1000)
        request_ids = request_ids_of(requests)
        fixed = self.options.behaviour == "fixed"
        if fixed:
            rows = self.fixed_rows(sample_indices_of(requests))
        else:
            answers = [self.answer(request) for request in requests]
        if _any_wants_first(requests):
            firsts = rows[:, 0].tolist() if fixed else [int(tokens[0]) for tokens in answers]
            wanted = [(request_id, first) for request_id, first, request
                      in zip(request_ids, firsts, requests, strict=True) if request.want_first_token]
            if wanted:
                sink.first_tokens(wanted)
        if self.options.delay_ms:
            time.sleep(self.options.delay_ms / 1000)
        if fixed:
            sink.complete_rows(request_ids, rows)
        else:
            sink.complete_batch(list(zip(request_ids, answers, strict=True)))

    def fixed_rows(self, sample_indices: Sequence[int]) -> np.ndarray:
        """fixed_answer for many samples at once, as an int32 matrix (one row per sample).

        The matrix is lent from a pool (see AnswerMatrices): it is reused once every reference to it is gone.
        """
        rows = self._answers.take(len(sample_indices))
        if rows.shape[1] > 1:
            first = 100 + (np.asarray(sample_indices, dtype=np.int64) * 31) % 20000
            rows[:, 0] = np.where(first == self.options.eos_token_id, first + 1, first)
        return rows


def _any_wants_first(requests: Sequence[GenerationRequest]) -> bool:
    if isinstance(requests, RequestBatch):
        return requests.want_first_token
    return any(request.want_first_token for request in requests)


def _merge_small_jobs(jobs: list[Sequence[GenerationRequest]], batch: int) -> list[Sequence[GenerationRequest]]:
    """Consecutive jobs are served together up to a batch (Server queries come one per job)."""
    merged: list[Sequence[GenerationRequest]] = []
    grown: set[int] = set()  # positions in `merged` whose request list this function owns
    for requests in jobs:
        if merged and len(merged[-1]) + len(requests) <= batch:
            last = len(merged) - 1
            if last not in grown:
                merged[last] = list(merged[last])
                grown.add(last)
            merged[last].extend(requests)  # type: ignore[attr-defined]
        else:
            merged.append(requests)
    return merged
