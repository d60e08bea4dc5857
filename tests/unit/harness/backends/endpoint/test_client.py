"""EndpointBackend against the stand-in server: ids, first tokens, routing, limits, and every failure rule; each test
runs with the client in process (client_workers 0) and in two worker processes (client_workers 2)."""

from __future__ import annotations

import asyncio
import re
import time
from array import array
from collections.abc import Iterator, Sequence

import pytest

from harness.backends.base import UnitLoad
from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.streaming import StreamRelay
from harness.errors import BackendError, ConfigError
from harness.types import GenerationRequest
from tests.unit.harness.backends.endpoint.standin import StandIn, expected_ids
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for

PROMPTS = [[1, 2 + i, 30 + i] for i in range(6)]
CLIENT = {"workers": 0}  # backend.client_workers of the test running now


@pytest.fixture(autouse=True, params=[0, 2], ids=["in-process", "workers"])
def client_workers(request: pytest.FixtureRequest) -> Iterator[int]:
    """Every test twice: the in-process client and the worker-process client."""
    CLIENT["workers"] = request.param
    yield request.param
    CLIENT["workers"] = 0


@pytest.fixture
def server() -> Iterator[StandIn]:
    with StandIn() as standin:
        yield standin


def started(urls: list[str], streams: bool, **options: object):  # type: ignore[no-untyped-def]
    options.setdefault("client_workers", CLIENT["workers"])
    backend = create(EndpointOptions(urls=urls, **options), Setup(sampling=greedy_spec(8), streams_first_token=streams))
    sink = RecordingSink()
    backend.start(sink)
    return backend, sink


@pytest.mark.parametrize("streams", [False, True])
def test_token_ids_come_back_exactly_with_first_tokens_when_streaming(server: StandIn, streams: bool) -> None:
    backend, sink = started([server.url], streams)
    try:
        backend.submit(requests_for(PROMPTS, want_first=streams))
        sink.wait(len(PROMPTS))
        assert sink.failed == {}
        assert sink.completed == {i: expected_ids(p, 8) for i, p in enumerate(PROMPTS)}
        if streams:
            assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: [ids[0]] for i, ids in
                                                                             sink.completed.items()}
            assert all(sink.calls.index(("first", i)) < sink.calls.index(("complete", i)) for i in sink.completed)
        else:
            assert sink.firsts == {}
        body = server.bodies[-1]
        assert body["model"] == "standin" and body["return_token_ids"] is True and body["stream"] is streams
        report = backend.report()
        assert report.load == (UnitLoad(server.url, requests=6, tokens=48, errors=0, version="standin-0.32"),)
        assert report.sections == {
            "endpoint": {"flavour": "vllm", "model": "standin", "stream": streams, "retokenize": False},
            "engines": [{"url": server.url, "engine": "vllm", "version": "standin-0.32", "model": "standin",
                         "model_root": "", "prefix_caching": "unknown",
                         "prefix_caching_source": "/metrics has no vllm:cache_config_info with enable_prefix_caching "
                                                  "(started with --disable-log-stats?)", "settings": {},
                         "stream_interval": "not reported",
                         "stream_interval_source": "vLLM reports it only under VLLM_SERVER_DEV_MODE=1 (/server_info); "
                                                   "backend.server_stream_interval is not set"}]}
    finally:
        backend.stop()
        backend.stop()


def test_first_token_is_reported_before_the_stream_ends() -> None:
    with StandIn(delay_s=0.0) as server:
        backend, sink = started([server.url], True)
        try:
            server.mode = "stall"  # first event, then silence until read_timeout
            backend.submit(requests_for([PROMPTS[0]], want_first=True))
            deadline = time.monotonic() + 10
            while 0 not in sink.firsts and time.monotonic() < deadline:
                time.sleep(0.01)
            assert sink.firsts[0][0][0] == expected_ids(PROMPTS[0], 8)[0]
            assert sink.completed == {} and sink.failed == {}
        finally:
            backend.stop()
    assert isinstance(sink.failed[0], BackendError)


def test_two_urls_share_the_work_least_in_flight_within_each_concurrency_limit() -> None:
    with StandIn(delay_s=0.1) as first, StandIn(delay_s=0.1) as second:
        backend, sink = started([first.url, second.url], False, concurrency=2)
        try:
            prompts = [[1, i] for i in range(12)]
            backend.submit(requests_for(prompts))
            sink.wait(12)
            assert sink.failed == {} and sink.completed == {i: expected_ids(p, 8) for i, p in enumerate(prompts)}
            assert first.max_in_flight == 2 and second.max_in_flight == 2
            counts = [unit.requests for unit in backend.report().load]
            assert counts == [6, 6], counts
        finally:
            backend.stop()


def test_start_names_a_url_that_is_not_ready_and_one_that_serves_another_model(server: StandIn) -> None:
    with StandIn() as gone:
        dead = gone.url
    started_at = time.monotonic()
    with pytest.raises(BackendError, match=f"{dead}: not ready"):
        started([server.url, dead], False, ready_timeout_s=1.0)
    assert time.monotonic() - started_at < 10
    with pytest.raises(BackendError, match=rf"{server.url}: does not serve model 'llama' \(it serves standin\)"):
        started([server.url], False, model="llama", ready_timeout_s=2.0)


def test_config_errors_for_generic_without_retokenize_and_server_without_streaming() -> None:
    with pytest.raises(ConfigError, match="generic returns text only"):
        create(EndpointOptions(urls=["http://127.0.0.1:1"], flavour="generic"), Setup())
    with pytest.raises(ConfigError, match="needs first tokens"):
        create(EndpointOptions(urls=["http://127.0.0.1:1"], stream=False), Setup(streams_first_token=True))


FAILURES = [
    ("reset", False, "closed the connection|reset|broken response"),
    ("http500", False, "HTTP 500 from /v1/completions: .*engine crashed"),
    ("stall", False, "stalled: no bytes for 1 s"),
    ("stall", True, "stalled: no bytes for 1 s"),
    ("broken_sse", True, "broken SSE event"),
    ("truncated", True, "SSE stream ended before its last event"),
    ("bad_ids", True, r"choices\[0\]\.token_ids is not a list of integers \(int32\)"),
]


@pytest.mark.parametrize(("mode", "streams", "message"), FAILURES)
def test_a_failing_server_fails_each_request_naming_its_url(server: StandIn, mode: str, streams: bool,
                                                            message: str) -> None:
    backend, sink = started([server.url], streams, read_timeout_s=1.0)
    try:
        server.mode = mode
        started_at = time.monotonic()
        backend.submit(requests_for(PROMPTS[:3], want_first=streams))
        sink.wait(3, timeout_s=30)
        assert time.monotonic() - started_at < 30
        assert sink.completed == {} and set(sink.failed) == {0, 1, 2}
        for error in sink.failed.values():
            assert isinstance(error, BackendError) and str(error).startswith(f"{server.url}: ")
            assert re.search(message, str(error)), str(error)
        assert backend.report().load[0].errors == 3
        assert server.completions == 1 + 3  # the warm-up, then each request once: no retries
    finally:
        backend.stop()


def test_a_server_that_went_away_refuses_and_the_request_fails_naming_it(server: StandIn) -> None:
    backend, sink = started([server.url], False, read_timeout_s=2.0)
    try:
        server.close_listener()
        backend.submit(requests_for(PROMPTS[:2]))
        sink.wait(2, timeout_s=30)
        assert set(sink.failed) == {0, 1}
        assert all(str(e).startswith(f"{server.url}: ") and "connect" in str(e) for e in sink.failed.values()), \
            [str(e) for e in sink.failed.values()]
    finally:
        backend.stop()


def test_cancel_all_fails_queued_and_in_flight_requests_and_later_ones() -> None:
    with StandIn(delay_s=0.5) as server:
        backend, sink = started([server.url], False, concurrency=1)
        try:
            backend.submit(requests_for(PROMPTS))
            time.sleep(0.1)
            started_at = time.monotonic()
            backend.cancel_all()
            sink.wait(6, timeout_s=10)  # five queued, one in flight (its HTTP request is dropped)
            assert time.monotonic() - started_at < 0.4, "the request in flight was not cancelled"
            assert sink.completed == {} and all("cancelled" in str(e) for e in sink.failed.values())
            backend.submit([GenerationRequest(request_id=99, sample_index=0, input_ids=PROMPTS[0])])
            sink.wait(7, timeout_s=10)
            assert "cancelled" in str(sink.failed[99])
        finally:
            backend.stop()
        assert backend.endpoints[0].in_flight == 0 and backend.endpoints[0].errors == 1


class _CallSink(RecordingSink):
    """Also records each batch call (kind, request ids), i.e. what becomes one LoadGen call."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, list[int]]] = []

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        self.batches.append(("first_tokens", [rid for rid, _ in firsts]))
        super().first_tokens(firsts)

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        self.batches.append(("complete_batch", [rid for rid, _ in completions]))
        super().complete_batch(completions)


# the in-process core's coalescing only (worker processes batch per loop turn in process.py)
@pytest.mark.parametrize("client_workers", [0], indirect=True)
def test_first_tokens_and_completions_of_one_loop_iteration_reach_the_sink_as_one_call_each(
        client_workers: int) -> None:
    backend = create(EndpointOptions(urls=["http://127.0.0.1:1"], client_workers=0), Setup(streams_first_token=True))
    sink = _CallSink()
    relay = backend._relay = StreamRelay(sink)
    for request_id in (1, 2, 3, 4):
        relay.open(request_id, want_first_token=True)
    loop = backend._loop = asyncio.new_event_loop()

    async def two_iterations() -> list[tuple[str, list[int]]]:
        backend._hand_over(backend._firsts, 1, [7])
        backend._hand_over(backend._finals, 2, array("i", [8, 9]))
        backend._hand_over(backend._firsts, 3, [10])
        backend._hand_over(backend._finals, 3, array("i", [10, 11]))
        during = list(sink.batches)
        await asyncio.sleep(0)  # the iteration ends: its results are handed over
        backend._hand_over(backend._finals, 1, array("i", [7, 12]))
        await asyncio.sleep(0)
        return during

    try:
        assert loop.run_until_complete(two_iterations()) == []
    finally:
        loop.close()
    assert sink.batches == [("first_tokens", [1, 3, 2]), ("complete_batch", [2, 3]), ("complete_batch", [1])]
    assert sink.completed == {1: [7, 12], 2: [8, 9], 3: [10, 11]} and 4 not in sink.completed
    assert {rid: [t for t, _ in f] for rid, f in sink.firsts.items()} == {1: [7], 2: [8], 3: [10]}


def test_ids_that_are_not_int32_fail_the_request_after_its_valid_first_token(server: StandIn) -> None:
    backend, sink = started([server.url], True)
    try:
        server.mode = "bad_ids"
        backend.submit(requests_for(PROMPTS[:1], want_first=True))
        sink.wait(1)
        assert sink.completed == {} and "not a list of integers" in str(sink.failed[0])
        assert sink.firsts[0][0][0] == expected_ids(PROMPTS[0], 8)[0] and sink.calls == [("first", 0), ("fail", 0)]
    finally:
        backend.stop()


@pytest.mark.parametrize("client_workers", [0], indirect=True)  # admission is the LoadGen process's, either way
def test_idle_servers_share_the_load_and_a_busier_one_is_passed_over(client_workers: int) -> None:
    from harness.backends.endpoint.client import EndpointEngine

    engine = EndpointEngine(EndpointOptions(urls=["http://a:1", "http://b:1", "http://c:1"], concurrency=2),
                            Setup(streams_first_token=False))
    picked = []
    for _ in range(6):  # one request at a time: every URL idle, so ties go round robin
        slot = engine.admit()
        assert slot is not None
        picked.append(slot.url)
        engine.release(slot)
    assert picked == ["http://a:1", "http://b:1", "http://c:1"] * 2
    held = [engine.admit() for _ in range(3)]  # one in flight on each
    busy = engine.admit()
    assert busy is not None and busy.url == "http://a:1" and held[0] is busy  # ties again: a, b, c, then a
    assert [e.url for e in (engine.admit(), engine.admit())] == ["http://b:1", "http://c:1"]
    assert engine.admit() is None  # every URL at its concurrency of 2
