"""One sweep level: a closed loop that keeps exactly `in_flight` requests outstanding and times every sample.

As mlcommons/endpoints' ConcurrencyStrategy (`load_generator/strategy.py`): a request is issued when a slot is
free, and its issue time is taken then, so TTFT does not include time spent waiting for a slot. The backend is
the run config's (built by the composition point, `harness.distributed.replicas`); LoadGen is not involved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.backends.base import (
    Backend,
    BackendInfo,
    BackendReport,
    Completion,
    packed_response_lengths,
    response_lengths,
)
from harness.console import Progress, one_line
from harness.dataset import Dataset
from harness.redact import redact_text
from harness.types import RequestBatch

__all__ = ["LevelRun", "Recorder", "run_level"]

_WAIT_S = 0.2  # how long the loop waits for results before looking again (Ctrl-C stays responsive)


class Recorder:
    """The backend's sink for one level: first-token and completion times, output lengths, failures."""

    def __init__(self, count: int) -> None:
        self.first_ns: list[int | None] = [None] * count
        self.completed_ns: list[int | None] = [None] * count
        self.n_tokens = [0] * count
        self.failures: dict[int, str] = {}
        self.eos_token_id = -1
        self.stops: tuple[int, ...] = ()
        self._finished: list[int] = []
        self._condition = threading.Condition()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """The first token of each request, timed once."""
        now = time.monotonic_ns()
        with self._condition:
            for request_id, _ in firsts:
                if 0 <= request_id < len(self.first_ns) and self.first_ns[request_id] is None:
                    self.first_ns[request_id] = now

    def _complete(self, request_ids: Sequence[int], lengths: Sequence[int]) -> None:
        now = time.monotonic_ns()
        with self._condition:
            for request_id, length in zip(request_ids, lengths, strict=True):
                if not 0 <= request_id < len(self.completed_ns) or self.completed_ns[request_id] is not None \
                        or request_id in self.failures:
                    continue
                self.completed_ns[request_id] = now
                self.n_tokens[request_id] = int(length)
                self._finished.append(request_id)
            self._condition.notify_all()

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        """Finished requests; the output length counts up to and including the first EOS or stop id."""
        lengths = [int(response_lengths(np.asarray([list(ids)], dtype=np.int64), self.eos_token_id, self.stops)[0])
                   if len(ids) else 0 for _, ids in completions]
        self._complete([request_id for request_id, _ in completions], lengths)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """Finished requests as a token matrix."""
        self._complete(list(request_ids), response_lengths(np.asarray(rows), self.eos_token_id, self.stops).tolist())

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """Finished requests packed in one array."""
        self._complete(list(request_ids),
                       packed_response_lengths(buffer, offsets, lengths, self.eos_token_id, self.stops).tolist())

    def fail(self, request_id: int, error: BaseException) -> None:
        """A failed request: the level fails with the first reason."""
        with self._condition:
            if request_id in self.failures or (0 <= request_id < len(self.completed_ns)
                                               and self.completed_ns[request_id] is not None):
                return
            self.failures[request_id] = one_line(redact_text(str(error) or type(error).__name__))
            self._finished.append(request_id)
            self._condition.notify_all()

    def take(self, timeout_s: float) -> list[int]:
        """The requests finished (completed or failed) since the last call; waits up to timeout_s for one."""
        with self._condition:
            if not self._finished:
                self._condition.wait(timeout_s)
            finished, self._finished = self._finished, []
            return finished


@dataclass
class LevelRun:
    """What one level measured: per-request issue times (ns) and the recorder, the backend's facts and report."""

    sample_indices: list[int]
    issued_ns: list[int | None]
    recorder: Recorder
    info: BackendInfo | None = None
    report: BackendReport = field(default_factory=BackendReport)

    @property
    def first_failure(self) -> str | None:
        """The first failed request's reason, naming its sample."""
        if not self.recorder.failures:
            return None
        request_id = min(self.recorder.failures)
        return f"QSL sample {self.sample_indices[request_id]}: {self.recorder.failures[request_id]}"

    def records(self) -> list[dict[str, object]]:
        """samples.jsonl records (the run directories' format; a failed request also has `error`)."""
        recorder = self.recorder
        rows: list[dict[str, object]] = []
        for request_id, issued in enumerate(self.issued_ns):
            if issued is None:
                continue
            row: dict[str, object] = {"qsl_idx": self.sample_indices[request_id], "issued_ns": issued,
                                      "first_token_ns": recorder.first_ns[request_id],
                                      "completed_ns": recorder.completed_ns[request_id],
                                      "n_tokens": recorder.n_tokens[request_id], "replica": None}
            if request_id in recorder.failures:
                row["error"] = recorder.failures[request_id]
            rows.append(row)
        return rows


def run_level(backend: Backend, dataset: Dataset, in_flight: int, stop_ids: Sequence[int] = (),
              progress: Progress | None = None) -> LevelRun:
    """Start the backend, send every sample of the dataset once with at most in_flight outstanding, stop it.

    The first failed request ends the level (nothing more is issued, queued work is cancelled); the caller
    reads `first_failure`. Ctrl-C cancels and stops the backend, then propagates.
    """
    count = len(dataset.samples)
    recorder = Recorder(count)
    run = LevelRun(list(range(count)), [None] * count, recorder)
    issued = 0

    def issue(how_many: int) -> None:
        nonlocal issued
        tickets = list(range(issued, min(count, issued + how_many)))
        if not tickets:
            return
        now = time.monotonic_ns()
        for ticket in tickets:
            run.issued_ns[ticket] = now
        issued += len(tickets)
        backend.submit(RequestBatch(tickets, [run.sample_indices[t] for t in tickets], dataset.samples, True))

    try:
        run.info = backend.start(recorder)
        recorder.eos_token_id = run.info.eos_token_id
        recorder.stops = tuple(stop_ids)
        issue(in_flight)
        finished = 0
        while finished < count:
            done = recorder.take(_WAIT_S)
            if not done:
                continue
            finished += len(done)
            if progress is not None:
                progress.advance(len(done), sum(recorder.n_tokens[i] for i in done))
            if recorder.failures:
                backend.cancel_all()
                break
            issue(len(done))
        run.report = backend.report()
    except BaseException:
        if run.info is not None:
            backend.cancel_all()
        raise
    finally:
        backend.stop()
    return run
