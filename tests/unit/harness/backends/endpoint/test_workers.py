"""The endpoint client's worker processes (backend.client_workers): same ids as in process, a dying worker ends the run
naming it, no worker outlives the run or takes Ctrl-C, pinning, options; workers import neither LoadGen nor torch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from harness.backends.endpoint.factory import create
from harness.backends.endpoint.messages import ResultBatch
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.pooled import PooledEndpointBackend
from harness.errors import BackendError
from tests.unit.harness.backends.endpoint.standin import StandIn, expected_ids
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn() as standin:
        yield standin


def pooled(urls: list[str], streams: bool = True, **options: object) -> tuple[PooledEndpointBackend, RecordingSink]:
    backend = create(EndpointOptions(urls=urls, **{"client_workers": 2, **options}),  # type: ignore[arg-type]
                     Setup(sampling=greedy_spec(16), streams_first_token=streams))  # type: ignore[arg-type]
    assert isinstance(backend, PooledEndpointBackend)
    sink = RecordingSink()
    backend.start(sink)  # type: ignore[arg-type]
    return backend, sink


def test_the_same_ids_and_first_tokens_per_sample_with_workers_on_and_off() -> None:
    prompts = [[1, 5 + i, 40 + 3 * i] for i in range(200)]
    results = {}
    with StandIn() as first, StandIn() as second:
        for workers in (0, 3):
            backend = create(EndpointOptions(urls=[first.url, second.url], concurrency=8, client_workers=workers),
                             Setup(sampling=greedy_spec(16), streams_first_token=True))
            sink = RecordingSink()
            backend.start(sink)
            try:
                backend.submit(requests_for(prompts, want_first=True))
                sink.wait(len(prompts))
            finally:
                backend.stop()
            assert sink.failed == {}
            assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: [ids[0]] for i, ids in
                                                                             sink.completed.items()}
            results[workers] = sink.completed
            assert sum(unit.requests for unit in backend.report().load) == len(prompts)
            assert first.max_in_flight <= 8 and second.max_in_flight <= 8
    assert results[0] == results[3] == {i: expected_ids(p, 16) for i, p in enumerate(prompts)}


def test_a_killed_worker_fails_its_requests_and_every_later_one_naming_it() -> None:
    with StandIn(delay_s=5.0) as server:
        backend, sink = pooled([server.url], read_timeout_s=30.0)
        try:
            backend.submit(requests_for([[1, i] for i in range(6)], want_first=True))
            deadline = time.monotonic() + 10
            while server.completions < 1 + 6 and time.monotonic() < deadline:  # the warm-up, then the six
                time.sleep(0.01)
            victim = backend.workers[1]
            started_at = time.monotonic()
            os.kill(victim.process.pid, signal.SIGKILL)
            sink.wait(3, timeout_s=30)  # the three it held (least-loaded dispatch: three each)
            assert time.monotonic() - started_at < 30
            name = f"endpoint client worker 1 (pid {victim.process.pid}) died (killed by signal -9 (SIGKILL))"
            lost = {rid: str(e) for rid, e in sink.failed.items()}
            assert len(lost) == 3 and all(name in text and text.startswith(f"{server.url}: request ")
                                          for text in lost.values()), lost
            backend.submit(requests_for([[1, 99]], start=50))
            sink.wait(4, timeout_s=5)
            assert str(sink.failed[50]) == f"the endpoint client is dead: {name}"
        finally:
            backend.stop()
        assert backend.report().load[0].errors == 6  # the three lost, and the other three cancelled by the stop
        assert "cancelled" in str(sink.failed[next(rid for rid in range(6) if rid not in lost)])


def test_a_frozen_worker_is_killed_and_ends_the_run_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.backends.endpoint.workers.SILENT_S", 2.0)
    with StandIn(delay_s=30.0) as server:
        backend, sink = pooled([server.url], read_timeout_s=60.0)
        try:
            time.sleep(3.0)  # idle workers beat every second: none is taken for frozen
            assert all(not handle.gone and handle.frozen is None for handle in backend.workers)
            backend.submit(requests_for([[1, i] for i in range(4)], want_first=True))
            time.sleep(0.5)
            victim = backend.workers[0]
            started_at = time.monotonic()
            os.kill(victim.process.pid, signal.SIGSTOP)  # alive, but its event loop never runs again
            sink.wait(2, timeout_s=15)  # the two it held
            assert time.monotonic() - started_at < 5
            name = f"endpoint client worker 0 (pid {victim.process.pid}) sent nothing, not even its heartbeat, for"
            lost = {rid: str(e) for rid, e in sink.failed.items()}
            assert len(lost) == 2 and all(name in text and "(frozen); killed" in text for text in lost.values()), lost
            assert victim.process.wait(5) == -signal.SIGKILL
            backend.submit(requests_for([[1, 99]], start=50))
            sink.wait(3, timeout_s=5)
            assert str(sink.failed[50]).startswith(f"the endpoint client is dead: {name}")
        finally:
            backend.stop()


def test_stop_ends_every_worker_and_a_worker_leaves_when_the_loadgen_process_is_gone(server: StandIn) -> None:
    backend, sink = pooled([server.url], client_workers=2)
    os.kill(backend.workers[0].process.pid, signal.SIGINT)  # Ctrl-C reaches the workers' process group: ignored
    time.sleep(0.3)
    backend.submit(requests_for([[1, 2], [1, 3], [1, 4]], want_first=True))
    sink.wait(3)
    assert sink.failed == {}
    orphan = backend.workers[1]
    orphan.conn.close()  # what the worker sees when the LoadGen process dies
    orphan.process.wait(10)
    started_at = time.monotonic()
    backend.stop()
    assert time.monotonic() - started_at < 5
    assert all(handle.process.poll() is not None for handle in backend.workers)
    backend.stop()


def test_a_prompt_that_is_not_int32_fails_its_request_alone(server: StandIn) -> None:
    backend, sink = pooled([server.url])
    try:
        requests = requests_for([[1, 2], [1, 2**40], [1, 4]], want_first=True)
        backend.submit(requests)
        sink.wait(3)
    finally:
        backend.stop()
    assert set(sink.completed) == {0, 2}
    assert str(sink.failed[1]) == "request 1 (QSL sample 1): the prompt's token ids are not all int32 integers"
    assert sum(unit.requests for unit in backend.report().load) == 2  # the refused one never went out


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux CPU affinity")
def test_workers_are_pinned_to_the_cpus_given(server: StandIn) -> None:
    cpu = sorted(os.sched_getaffinity(0))[-1]
    backend, _ = pooled([server.url], client_workers=1, client_worker_cpus=(cpu,))
    try:
        assert os.sched_getaffinity(backend.workers[0].process.pid) == {cpu}
    finally:
        backend.stop()


def test_a_url_that_refuses_the_workers_connections_fails_start_naming_it(server: StandIn) -> None:
    backend = create(EndpointOptions(urls=[server.url], client_workers=1), Setup(sampling=greedy_spec(8)))
    original = backend.engine.open  # type: ignore[union-attr]

    async def open_then_close_listener():  # type: ignore[no-untyped-def]
        info = await original()
        server.close_listener()
        return info

    backend.engine.open = open_then_close_listener  # type: ignore[union-attr,method-assign]
    with pytest.raises(BackendError, match=rf"endpoint client worker 0 \(pid \d+\): {server.url}: cannot open a "
                                           "connection"):
        backend.start(RecordingSink())  # type: ignore[arg-type]


def test_worker_options(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EndpointOptions(urls=["http://h:1"]).client_workers == "auto"  # worker processes by default
    assert EndpointOptions(urls=["http://h:1"], client_workers=0).worker_count() == 0
    assert EndpointOptions(urls=["http://h:1"], client_workers=3).worker_count() == 3
    for cores, replicas, expected in ((2, 1, 1), (1, 1, 1), (16, 1, 14), (16, 2, 7), (16, 20, 1), (128, 1, 64)):
        monkeypatch.setattr("os.sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        assert EndpointOptions(urls=["http://h:1"]).worker_count(replicas) == expected, (cores, replicas)
    generic = EndpointOptions(urls=["http://h:1"], flavour="generic", retokenize=True)
    assert generic.worker_count() == 0  # text is turned into ids in the LoadGen process
    with pytest.raises(ValidationError, match="client_workers is 0"):
        EndpointOptions(urls=["http://h:1"], client_workers=-1)
    with pytest.raises(ValidationError, match="client_workers needs a flavour that returns token ids"):
        EndpointOptions(urls=["http://h:1"], flavour="generic", retokenize=True, client_workers=2)


def test_the_worker_process_imports_neither_loadgen_nor_torch() -> None:
    code = ("import sys; import harness.backends.endpoint.process; "
            "print(sorted(m for m in ('torch', 'mlperf_loadgen', 'harness.loadgen', 'harness.sut', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def _batch(firsts: list[tuple[int, int]], finals: list[tuple[int, list[int]]], failures: list[tuple[int, str]]
           ) -> ResultBatch:
    batch = ResultBatch()
    for request_id, token in firsts:
        batch.first(request_id, token)
    for request_id, ids in finals:
        batch.final(request_id, ids if len(ids) % 2 else array("i", ids))  # a list or an int32 array
    for request_id, text in failures:
        batch.failure(request_id, text)
    return batch


def test_a_busy_workers_queued_results_go_out_as_one_message_in_order() -> None:
    from harness.backends.endpoint.process import _merged

    queued = [_batch([(1, 7)], [], []), _batch([(2, 8)], [(1, [7, 9])], []), ("beat", None),
              _batch([], [], [(3, "x")]), _batch([], [(2, [8])], []), None, _batch([(9, 9)], [], [])]
    merged = [m.message() if isinstance(m, ResultBatch) else m for m in _merged(queued)]
    assert merged == [_batch([(1, 7), (2, 8)], [(1, [7, 9])], []).message(), ("beat", None),
                      _batch([], [(2, [8])], [(3, "x")]).message(), None, _batch([(9, 9)], [], []).message()]


def test_a_results_message_packs_ids_and_tokens_end_to_end() -> None:
    batch = _batch([(5, 11), (6, 12)], [(5, [11, 3, 4]), (6, [12, 2**31 - 1])], [(7, "http://h:1: stalled")])
    kind, first_ids, first_tokens, final_ids, lengths, tokens, failures = batch.message()
    assert kind == "results" and failures == [(7, "http://h:1: stalled")]
    assert array("q", first_ids).tolist() == [5, 6] and array("i", first_tokens).tolist() == [11, 12]
    assert array("q", final_ids).tolist() == [5, 6] and array("q", lengths).tolist() == [3, 2]
    assert array("i", tokens).tolist() == [11, 3, 4, 12, 2**31 - 1]
    for bad in ([1, 2**31], [1, "2"]):  # not int32 integers: refused before anything is added
        with pytest.raises((OverflowError, TypeError)):
            batch.final(8, bad)  # type: ignore[arg-type]
    with pytest.raises(OverflowError):
        batch.first(8, 2**31)
    assert batch.message()[1:6] == (first_ids, first_tokens, final_ids, lengths, tokens)
