"""Turns a backend's token updates into the TokenSink's once-only calls (first token, then completion).

Backends differ in how tokens arrive (transformers streamer steps, TensorRT-LLM cumulative RequestOutput
token lists, MPI messages); this relay enforces the sink contract for all of them: at most one
first_token per request, before exactly one complete or fail, and nothing for unknown requests.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.backends.base import TokenSink

__all__ = ["StreamRelay"]


@dataclass
class _Pending:
    want_first: bool
    tokens: list[int] = field(default_factory=list)
    first_sent: bool = False


def _as_tokens(final_tokens: Sequence[int]) -> Sequence[int]:
    """Final ids as the sink receives them: an int32 array as it is (its buffer goes to LoadGen as bytes), any
    other sequence as a list of Python ints."""
    if isinstance(final_tokens, array) and final_tokens.typecode == "i":
        return final_tokens
    return [int(t) for t in final_tokens]


class StreamRelay:
    """Per-request token accumulation with exactly-once delivery to a sink. Thread-safe."""

    def __init__(self, sink: TokenSink) -> None:
        self._sink = sink
        self._pending: dict[int, _Pending] = {}
        self._lock = threading.Lock()

    def open(self, request_id: int, want_first_token: bool) -> None:
        """Start tracking a request."""
        with self._lock:
            self._pending[request_id] = _Pending(want_first_token)

    def __contains__(self, request_id: int) -> bool:
        with self._lock:
            return request_id in self._pending

    @property
    def open_count(self) -> int:
        """Requests not yet completed or failed."""
        with self._lock:
            return len(self._pending)

    def extend(self, request_id: int, new_tokens: Sequence[int]) -> None:
        """Append newly generated tokens; the first one is forwarded as the first token."""
        self.extend_each([(request_id, new_tokens)])

    def extend_each(self, updates: Sequence[tuple[int, Sequence[int]]]) -> None:
        """extend() for several requests; their first tokens go to the sink in one call."""
        firsts = []
        with self._lock:
            for request_id, new_tokens in updates:
                state = self._pending.get(request_id)
                if state is None or not new_tokens:
                    continue
                state.tokens.extend(int(t) for t in new_tokens)
                if state.want_first and not state.first_sent:
                    state.first_sent = True
                    firsts.append((request_id, state.tokens[0]))
        if firsts:
            self._sink.first_tokens(firsts)

    def update_cumulative(self, request_id: int, all_tokens: Sequence[int]) -> None:
        """Replace the token list with a cumulative one (TensorRT-LLM style outputs)."""
        with self._lock:
            state = self._pending.get(request_id)
            if state is None:
                return
            known = len(state.tokens)
        if len(all_tokens) > known:
            self.extend(request_id, all_tokens[known:])  # only the new tail is copied: linear per request

    def finish(self, request_id: int, final_tokens: Sequence[int] | None = None) -> None:
        """Complete a request with the final tokens (default: the accumulated ones)."""
        self.finish_each([(request_id, final_tokens)])

    def finish_each(self, finals: Sequence[tuple[int, Sequence[int] | None]]) -> None:
        """finish() for several requests: missing first tokens in one call, then one batch completion."""
        firsts: list[tuple[int, int]] = []
        done: list[tuple[int, Sequence[int]]] = []
        with self._lock:
            for request_id, final_tokens in finals:
                state = self._pending.pop(request_id, None)
                if state is None:
                    continue
                tokens = _as_tokens(final_tokens) if final_tokens is not None else state.tokens
                if state.want_first and not state.first_sent and tokens:
                    firsts.append((request_id, tokens[0]))
                done.append((request_id, tokens))
        if firsts:
            self._sink.first_tokens(firsts)
        if done:
            self._sink.complete_batch(done)

    def finish_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """finish() for a token matrix (row k: request k's generated ids): missing first tokens from column 0,
        then one complete_rows call; requests not open are left out."""
        keep: list[int] = []
        firsts: list[tuple[int, int]] = []
        with self._lock:
            for position, request_id in enumerate(request_ids):
                state = self._pending.pop(request_id, None)
                if state is None:
                    continue
                keep.append(position)
                if state.want_first and not state.first_sent and rows.shape[1]:
                    firsts.append((request_id, int(rows[position, 0])))
        if firsts:
            self._sink.first_tokens(firsts)
        if keep:
            if len(keep) == len(request_ids):
                self._sink.complete_rows(request_ids, rows)
            else:
                self._sink.complete_rows([request_ids[k] for k in keep], rows[keep])

    def fail(self, request_id: int, error: BaseException) -> None:
        """Fail a request."""
        with self._lock:
            state = self._pending.pop(request_id, None)
        if state is not None:
            self._sink.fail(request_id, error)

    def fail_all(self, error: BaseException) -> None:
        """Fail every open request (backend shut down or crashed)."""
        with self._lock:
            ids = list(self._pending)
        for request_id in ids:
            self.fail(request_id, error)
