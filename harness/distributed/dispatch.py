"""Least-in-flight routing of requests across backend replicas (local backends or remote MPI groups).

A replica is anything that implements the Backend protocol: an in-process backend on one GPU, or a
RemoteReplica proxy for a worker rank (which may lead a TensorRT-LLM TP×PP group spanning many ranks).
The dispatcher is itself a Backend, so the SUT never knows how many replicas serve it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from harness.backends.base import (
    Backend,
    BackendInfo,
    BackendReport,
    Completion,
    SinkWrapper,
    TokenSink,
    merge_reports,
    response_lengths,
)
from harness.errors import BackendError
from harness.types import GenerationRequest

__all__ = ["DispatchBackend"]


class _CountingSink(SinkWrapper):
    """In front of the SUT's sink for one replica: keeps its in-flight counts and throughput; batches stay batches."""

    def __init__(self, dispatcher: DispatchBackend, replica: int, sink: TokenSink) -> None:
        super().__init__(sink)
        self.dispatcher, self.replica = dispatcher, replica

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        self.dispatcher._done(self.replica, len(completions), sum(len(tokens) for _, tokens in completions))
        self.sink.complete_batch(completions)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        tokens = int(response_lengths(rows, self.dispatcher.eos_token_id).sum())
        self.dispatcher._done(self.replica, len(request_ids), tokens)
        self.sink.complete_rows(request_ids, rows)

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        self.dispatcher._done(self.replica, len(request_ids), int(lengths.sum()))
        self.sink.complete_packed(request_ids, buffer, offsets, lengths)

    def fail(self, request_id: int, error: BaseException) -> None:
        self.dispatcher._done(self.replica, 1, 0)
        self.sink.fail(request_id, error)


class DispatchBackend:
    """Routes each request to the replica with the fewest requests in flight."""

    def __init__(self, replicas: Sequence[Backend], names: Sequence[str] | None = None,
                 chunk: int = 1) -> None:
        if not replicas:
            raise BackendError("no backend replicas to dispatch to")
        self.replicas = list(replicas)
        self.names = list(names) if names else [f"replica {i}" for i in range(len(replicas))]
        self.chunk = max(1, chunk)
        self.in_flight = [0] * len(replicas)
        self.completed = [0] * len(replicas)
        self.tokens = [0] * len(replicas)
        self.assignments: dict[int, int] = {}
        self.eos_token_id = -1  # known once the replicas have started
        self._lock = threading.Lock()

    def start(self, sink: TokenSink) -> BackendInfo:
        """Start every replica, each reporting to `sink` through its own counter; they must agree on EOS."""
        infos = [replica.start(_CountingSink(self, index, sink)) for index, replica in enumerate(self.replicas)]
        self.names = [getattr(r, "label", name) for r, name in zip(self.replicas, self.names, strict=True)]
        eos = {info.eos_token_id for info in infos}
        if len(eos) != 1:
            raise BackendError(f"replicas disagree on the EOS id: {sorted(eos)}; they must serve the same model")
        first = infos[0]
        self.eos_token_id = first.eos_token_id
        return replace(first, name=f"{len(infos)}× {first.name}", max_batch_size=sum(i.max_batch_size for i in infos),
                       streaming=all(i.streaming for i in infos), submittable=all(i.submittable for i in infos),
                       notes=(*first.notes, f"data parallel over {len(infos)} replicas: {', '.join(self.names)}"))

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Every replica's warm-up: worker ranks all at once (each on its own host), in-process replicas one
        after the other (their graph captures take turns)."""
        for replica in self.replicas:
            begin = getattr(replica, "begin_warm_up", None)
            if begin is not None:
                begin(longest_prompt, batch_sizes)
        notes = [(name, replica.warm_up(longest_prompt, batch_sizes))
                 for name, replica in zip(self.names, self.replicas, strict=True)]
        return "; ".join(f"{name}: {note}" for name, note in notes if note) or None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Assign requests in chunks to the least-loaded replica, then submit per replica."""
        batches: dict[int, list[GenerationRequest]] = {}
        with self._lock:
            for start in range(0, len(requests), self.chunk):
                chunk = list(requests[start:start + self.chunk])
                target = min(range(len(self.replicas)), key=lambda i: (self.in_flight[i], i))
                self.in_flight[target] += len(chunk)
                batches.setdefault(target, []).extend(chunk)
                for request in chunk:
                    self.assignments[request.request_id] = target
        for target, batch in batches.items():
            self.replicas[target].submit(batch)

    def _done(self, replica: int, requests: int, tokens: int) -> None:
        with self._lock:
            self.in_flight[replica] -= requests
            self.completed[replica] += requests
            self.tokens[replica] += tokens

    def cancel_all(self) -> None:
        """Cancel on every replica."""
        for replica in self.replicas:
            replica.cancel_all()

    def stop(self) -> None:
        """Stop every replica."""
        for replica in self.replicas:
            replica.stop()

    def report(self) -> BackendReport:
        """Every replica's report, merged (load rows in replica order)."""
        return merge_reports([replica.report() for replica in self.replicas])

    def progress_text(self, elapsed_s: Callable[[], float]) -> str:
        """Per-replica completed samples and tokens/s, for the progress line."""
        seconds = max(elapsed_s(), 1e-9)
        with self._lock:
            parts = [f"r{i}: {self.completed[i]} done {self.tokens[i] / seconds:,.0f} tok/s"
                     for i in range(len(self.replicas))]
        return " | ".join(parts)
