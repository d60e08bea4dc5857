"""Test helpers for the endpoint backend: a recording sink, a setup like BackendSetup, a run-to-completion helper."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.backends.base import packed_completions
from harness.backends.sampling import SamplingSpec
from harness.config import ModelConfig
from harness.types import GenerationRequest

__all__ = ["RecordingSink", "Setup", "greedy_spec", "requests_for"]


def greedy_spec(max_new: int = 8, min_new: int = 0, eos: int = 2, stop_ids: tuple[int, ...] = ()) -> SamplingSpec:
    """The reference's greedy decoding with a small token budget (`stop_ids`: stop ids besides EOS)."""
    return SamplingSpec(max_new_tokens=max_new, min_new_tokens=min_new, greedy=True, temperature=0.0, top_k=1,
                        top_p=1.0, num_beams=1, repetition_penalty=1.0, presence_penalty=0.0, length_penalty=1.0,
                        early_stopping=False, eos_token_id=eos, pad_token_id=eos, stop_token_ids=stop_ids)


@dataclass(frozen=True)
class Setup:
    """The fields of harness.backends.base.BackendSetup (issue 13 interface) that the endpoint backend reads."""

    sampling: SamplingSpec = field(default_factory=greedy_spec)
    streams_first_token: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    replica_index: int = 0
    replicas: int = 1


class RecordingSink:
    """A thread-safe TokenSink that records every call, with the time of first tokens."""

    def __init__(self) -> None:
        self.firsts: dict[int, list[tuple[int, float]]] = {}
        self.completed: dict[int, list[int]] = {}
        self.failed: dict[int, BaseException] = {}
        self.calls: list[tuple[str, int]] = []  # (kind, request id) in order
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        with self._changed:
            for request_id, token in firsts:
                self.firsts.setdefault(request_id, []).append((int(token), time.monotonic()))
                self.calls.append(("first", request_id))
            self._changed.notify_all()

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        with self._changed:
            for request_id, ids in completions:
                assert request_id not in self.completed and request_id not in self.failed, request_id
                self.completed[request_id] = [int(t) for t in ids]
                self.calls.append(("complete", request_id))
            self._changed.notify_all()

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        self.complete_batch(list(zip(request_ids, np.asarray(rows).tolist(), strict=True)))

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        self.complete_batch(packed_completions(request_ids, buffer, offsets, lengths))

    def fail(self, request_id: int, error: BaseException) -> None:
        with self._changed:
            assert request_id not in self.completed and request_id not in self.failed, request_id
            self.failed[request_id] = error
            self.calls.append(("fail", request_id))
            self._changed.notify_all()

    def wait(self, count: int, timeout_s: float = 30.0) -> None:
        """Block until `count` requests have completed or failed."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while len(self.completed) + len(self.failed) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"only {len(self.completed) + len(self.failed)} of {count} requests ended "
                                         f"within {timeout_s} s")
                self._changed.wait(left)


def requests_for(prompts: Sequence[Sequence[int]], want_first: bool = False, start: int = 0) -> list[GenerationRequest]:
    """GenerationRequests with ids start, start+1, ..."""
    return [GenerationRequest(start + i, i, tuple(p), want_first) for i, p in enumerate(prompts)]


def summary(sink: RecordingSink) -> dict[str, Any]:
    """Counts for assertion messages."""
    return {"completed": len(sink.completed), "failed": {k: str(v) for k, v in sink.failed.items()}}


def engine_rows(url: str, **options: Any) -> list[dict[str, Any]]:
    """Start an endpoint backend against `url` with these options and return its `engines` report rows."""
    from harness.backends.endpoint.factory import create
    from harness.backends.endpoint.options import EndpointOptions

    backend = create(EndpointOptions(urls=[url], **options), Setup(sampling=greedy_spec(4)))  # type: ignore[arg-type]
    try:
        backend.start(RecordingSink())  # type: ignore[arg-type]
        rows: list[dict[str, Any]] = backend.report().sections["engines"]
        return rows
    finally:
        backend.stop()
