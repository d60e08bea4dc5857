"""The async engine core: admission in order, per-turn coalescing, failures, the dead-engine rule, cancel-all, a
bounded stop, and a start that fails cleanly. A small engine written here drives it (each behaviour is a knob)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from harness.backends.base import BackendInfo, BackendReport
from harness.backends.core import AsyncEngineBackend, EngineDead, EngineStopHung, RequestFailed
from harness.errors import BackendError
from harness.types import GenerationRequest


class ToyEngine:
    """Answers request r with [r, r + 1, ..., eos] after `delay_s(r)`; knobs fail, kill or hang it."""

    label = "toy"

    def __init__(self, capacity: int | None = None, stop_timeout_s: float = 5.0) -> None:
        self.stop_timeout_s = stop_timeout_s
        self.capacity = capacity
        self.in_flight = 0
        self.peak = 0
        self.started: list[int] = []
        self.delay_s: Callable[[int], float] = lambda _: 0.0
        self.fail: set[int] = set()
        self.kill: set[int] = set()
        self.aborted: list[int] = []
        self.hang_shutdown = threading.Event()  # set: shutdown blocks until `unblock` is set
        self.unblock = threading.Event()
        self.closed = False
        self.open_error: Exception | None = None

    def prepare(self) -> None:
        pass

    async def open(self) -> BackendInfo:
        if self.open_error is not None:
            raise self.open_error
        return BackendInfo(name="toy", eos_token_id=2, max_batch_size=self.capacity or 0, streaming=True)

    def admit(self) -> Any:
        if self.capacity is not None and self.in_flight >= self.capacity:
            return None
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        return "slot"

    def release(self, slot: Any) -> None:
        assert slot == "slot"
        self.in_flight -= 1

    async def generate(self, request: GenerationRequest, slot: Any,
                       first: Callable[[Sequence[int]], None] | None) -> Sequence[int]:
        rid = request.request_id
        self.started.append(rid)
        try:
            if first is not None:
                first([rid])
            await asyncio.sleep(self.delay_s(rid))
        except asyncio.CancelledError:
            self.aborted.append(rid)
            raise
        if rid in self.kill:
            raise EngineDead("executor crashed: CUDA error")
        if rid in self.fail:
            raise RequestFailed(f"toy request {rid}: refused")
        return [rid, rid + 1, 2]

    async def close(self) -> None:
        self.closed = True

    def shutdown(self) -> None:
        if self.hang_shutdown.is_set():
            self.unblock.wait()

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        return None

    def report(self) -> BackendReport:
        return BackendReport()


class CallSink:
    """Records each sink call (what becomes one LoadGen call) and the per-request outcome."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []
        self.completed: dict[int, list[int]] = {}
        self.failed: dict[int, str] = {}
        self.changed = threading.Condition()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        with self.changed:
            self.calls.append(("first", [rid for rid, _ in firsts]))

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        with self.changed:
            self.calls.append(("complete", [rid for rid, _ in completions]))
            self.completed.update((rid, list(ids)) for rid, ids in completions)
            self.changed.notify_all()

    def complete_rows(self, request_ids: Sequence[int], rows: Any) -> None:
        raise AssertionError("not used by the core")

    def fail(self, request_id: int, error: BaseException) -> None:
        with self.changed:
            assert isinstance(error, BackendError)
            self.failed[request_id] = str(error)
            self.changed.notify_all()

    def wait(self, count: int, timeout_s: float = 10.0) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.completed) + len(self.failed) >= count, timeout_s), (
                self.completed, self.failed)


def requests(ids: Sequence[int], want_first: bool = False) -> list[GenerationRequest]:
    return [GenerationRequest(request_id=i, sample_index=i, input_ids=(1, i), want_first_token=want_first)
            for i in ids]


def started(engine: ToyEngine) -> tuple[AsyncEngineBackend, CallSink]:
    backend, sink = AsyncEngineBackend(engine, "toy-loop"), CallSink()
    backend.start(sink)
    return backend, sink


def test_requests_finishing_in_one_loop_turn_reach_the_sink_in_one_call() -> None:
    engine = ToyEngine()
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(50)))
        sink.wait(50)
    finally:
        backend.stop()
    assert sink.completed == {i: [i, i + 1, 2] for i in range(50)}
    assert [kind for kind, _ in sink.calls] == ["complete"], sink.calls


def test_first_tokens_of_one_turn_go_in_one_call_before_the_completions() -> None:
    engine = ToyEngine()
    engine.delay_s = lambda rid: 0.2 if rid % 2 else 0.0
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(10), want_first=True))
        sink.wait(10)
    finally:
        backend.stop()
    kinds = [kind for kind, _ in sink.calls]
    assert kinds[0] == "first" and sorted(sink.calls[0][1]) == list(range(10)), sink.calls
    assert kinds.count("complete") == 2 and len(sink.calls) == 3, sink.calls


def test_admission_keeps_submission_order_and_the_engines_limit() -> None:
    engine = ToyEngine(capacity=3)
    engine.delay_s = lambda rid: 0.01
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(20)))
        backend.submit(requests(range(20, 30)))
        sink.wait(30)
    finally:
        backend.stop()
    assert engine.started == list(range(30)) and engine.peak == 3 and engine.in_flight == 0
    assert len(sink.completed) == 30


def test_a_failed_request_names_itself_and_the_others_complete() -> None:
    engine = ToyEngine()
    engine.fail = {3}
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(6)))
        sink.wait(6)
    finally:
        backend.stop()
    assert sink.failed == {3: "toy request 3: refused"} and sorted(sink.completed) == [0, 1, 2, 4, 5]


def test_a_dead_engine_fails_what_waits_and_every_later_request_at_once() -> None:
    engine = ToyEngine(capacity=1)
    engine.kill = {1}
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(5)))
        sink.wait(5)
        backend.submit(requests([7]))
        sink.wait(6)
    finally:
        backend.stop()
    assert sorted(sink.completed) == [0]
    assert sink.failed[1] == "toy request 1 failed: executor crashed: CUDA error"
    dead = "the toy engine is dead: executor crashed: CUDA error"
    assert all(sink.failed[rid] == dead for rid in (2, 3, 4, 7)), sink.failed
    assert engine.started == [0, 1], "a request reached the dead engine"


def test_cancel_all_aborts_what_runs_fails_what_waits_and_refuses_later_requests() -> None:
    engine = ToyEngine(capacity=2)
    engine.delay_s = lambda rid: 30.0
    backend, sink = started(engine)
    try:
        backend.submit(requests(range(5)))
        while len(engine.started) < 2:
            time.sleep(0.01)
        began = time.monotonic()
        backend.cancel_all()
        sink.wait(5)
        assert time.monotonic() - began < 2
        backend.submit(requests([9]))
        sink.wait(6)
    finally:
        backend.stop()
    assert sink.completed == {} and sorted(engine.aborted) == [0, 1] and engine.started == [0, 1]
    assert all("cancelled" in text for text in sink.failed.values()) and 9 in sink.failed


def test_stop_ends_requests_in_flight_and_closes_the_engine() -> None:
    engine = ToyEngine()
    engine.delay_s = lambda rid: 30.0
    backend, sink = started(engine)
    backend.submit(requests(range(3)))
    while len(engine.started) < 3:
        time.sleep(0.01)
    began = time.monotonic()
    backend.stop()
    assert time.monotonic() - began < 2 and engine.closed and sorted(engine.aborted) == [0, 1, 2]
    assert sorted(sink.failed) == [0, 1, 2] and backend.stop_problem is None
    with pytest.raises(BackendError, match="not running"):
        backend.submit(requests([5]))


def test_a_hanging_shutdown_is_abandoned_after_the_bound_and_raised() -> None:
    engine = ToyEngine(stop_timeout_s=0.3)
    engine.hang_shutdown.set()
    backend, _ = started(engine)
    began = time.monotonic()
    try:
        with pytest.raises(EngineStopHung, match=r"did not shut down within 0.3 s") as caught:
            backend.stop()
        assert 0.3 <= time.monotonic() - began < 2
    finally:
        engine.unblock.set()
    assert caught.value.exit_code == 4 and caught.value.leaves_native_thread
    assert backend.stop_problem is not None
    backend.stop()  # idempotent


def test_a_failing_open_is_raised_and_leaves_no_loop_thread() -> None:
    engine = ToyEngine()
    engine.open_error = BackendError("toy could not load the model")
    before = {t.name for t in threading.enumerate()}
    backend = AsyncEngineBackend(engine, "toy-loop-open")
    with pytest.raises(BackendError, match="could not load"):
        backend.start(CallSink())
    time.sleep(0.05)
    assert "toy-loop-open" not in {t.name for t in threading.enumerate()} - before
