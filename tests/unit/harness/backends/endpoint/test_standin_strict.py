"""The endpoint backend against a stand-in as strict as vLLM (issue 23, item 4): EOS, stop ids, min_tokens,
ignore_eos, keep-alive, and answers of varying lengths and delays.

Each rule is vLLM's, as tests/unit/harness/backends/endpoint/standin.py models it from vLLM's sources:
`vllm/v1/core/sched/utils.py::check_stop` (where an answer ends, the stop id kept as its last id),
`vllm/v1/sample/logits_processor/builtin.py::MinTokensLogitsProcessor` (no stop id before min_tokens),
`vllm/sampling_params.py::update_from_generation_config` (ignore_eos keeps the checkpoint's other EOS ids from
stopping), `vllm/entrypoints/launcher.py::serve_http` (uvicorn keeps connections alive). Every test goes through the
real EndpointBackend and reads what its sink (the SUT's side) received.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from harness.backends.endpoint.client import EndpointBackend
from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.sampling import SamplingSpec
from tests.unit.harness.backends.endpoint.standin import EOS, StandIn, expected_ids
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for, summary

STOP = 1234  # a stop id besides EOS (outside the stand-in's babble ids 3..1002)
OTHER_EOS = 1500  # another EOS id of the checkpoint's generation_config


def _started(server: StandIn, spec: SamplingSpec, streams: bool, concurrency: int = 4,
             **options: Any) -> tuple[EndpointBackend, RecordingSink]:
    """A started vllm-flavour backend on the stand-in, and the sink it reports to."""
    backend = create(EndpointOptions(urls=(server.url,), concurrency=concurrency, **options),
                     Setup(sampling=spec, streams_first_token=streams))  # type: ignore[arg-type]  # Setup: the fields read
    sink = RecordingSink()
    backend.start(sink)
    return backend, sink


def _answers(server: StandIn, spec: SamplingSpec, prompts: Sequence[list[int]], streams: bool) -> RecordingSink:
    """Run the prompts to completion; what the sink received (no request may fail)."""
    backend, sink = _started(server, spec, streams)
    try:
        backend.submit(requests_for(prompts, want_first=streams))
        sink.wait(len(prompts))
        assert backend.report().load[0].tokens == sum(len(ids) for ids in sink.completed.values())
    finally:
        backend.stop()
    assert sink.failed == {}, summary(sink)
    if streams:  # the first token reported is the answer's first id, EOS included
        assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: a[:1] for i, a in sink.completed.items()}
    return sink


def _by_second(lengths: dict[int, int]) -> Callable[[list[int]], int]:
    """A natural answer length per prompt, keyed by the prompt's second id (the warm-up's [2, 2, 2, 2]: 1)."""
    return lambda prompt: lengths.get(prompt[1], 1)


@pytest.mark.parametrize("streams", [False, True])
def test_an_answer_that_ends_before_max_tokens_ends_with_the_eos_id(streams: bool) -> None:
    natural = {0: 0, 1: 3, 2: 7, 3: 8, 4: 12}  # EOS at once, inside, as the 8th id, just after, never
    prompts = [[1, k, 40 + k] for k in natural]
    with StandIn(lengths=_by_second(natural)) as server:
        sink = _answers(server, greedy_spec(8), prompts, streams)
    want = {i: [*expected_ids(p, natural[p[1]]), EOS] if natural[p[1]] < 8 else expected_ids(p, 8)
            for i, p in enumerate(prompts)}
    assert sink.completed == want
    assert [len(ids) for ids in sink.completed.values()] == [1, 4, 8, 8, 8]
    assert [ids.count(EOS) for ids in sink.completed.values()] == [1, 1, 1, 0, 0]


@pytest.mark.parametrize("streams", [False, True])
def test_the_specs_stop_ids_are_sent_and_end_the_answer_at_the_first_one_generated(streams: bool) -> None:
    prompts = [[1, k, 9] for k in range(4)]
    with StandIn(planted={3: STOP, 5: STOP}) as server:
        stopped = _answers(server, greedy_spec(8, stop_ids=(STOP,)), prompts, streams)
        assert server.bodies[-1]["stop_token_ids"] == [EOS, STOP]
        ran_on = _answers(server, greedy_spec(8), prompts, streams)  # the same model, STOP not asked for
    assert stopped.completed == {i: [*expected_ids(p, 3), STOP] for i, p in enumerate(prompts)}
    assert ran_on.completed == {i: [*expected_ids(p, 3), STOP, *expected_ids(p, 5)[4:], STOP, *expected_ids(p, 8)[6:]]
                                for i, p in enumerate(prompts)}


@pytest.mark.parametrize("streams", [False, True])
def test_min_new_tokens_holds_eos_and_stop_ids_back_until_that_many_ids(streams: bool) -> None:
    natural = {0: 0, 1: 2, 2: 5, 3: 6, 4: 9}
    prompts = [[1, k, 3] for k in natural]
    with StandIn(lengths=_by_second(natural), planted={1: STOP, 6: STOP}) as server:
        sink = _answers(server, greedy_spec(8, min_new=5, stop_ids=(STOP,)), prompts, streams)
        assert server.bodies[-1]["min_tokens"] == 5
    # before id 5 the model's EOS (and the STOP planted at 1) are masked; from 5 on, the first stop id ends it
    want = {0: [*expected_ids(prompts[0], 5), EOS], 1: [*expected_ids(prompts[1], 5), EOS],
            2: [*expected_ids(prompts[2], 5), EOS], 3: [*expected_ids(prompts[3], 6), STOP],
            4: [*expected_ids(prompts[4], 6), STOP]}
    assert sink.completed == want
    assert min(len(ids) for ids in sink.completed.values()) == 6


@pytest.mark.parametrize("streams", [False, True])
def test_ignore_eos_keeps_the_checkpoints_other_eos_ids_from_ending_the_answer(streams: bool) -> None:
    prompt = [1, 7, 7]
    with StandIn(lengths=lambda _: 6, generation_eos=(EOS, OTHER_EOS), planted={2: OTHER_EOS}) as server:
        sink = _answers(server, greedy_spec(8), [prompt], streams)
        body = server.bodies[-1]
        # the vllm flavour sends ignore_eos with its EOS as a stop id: EOS still ends the answer, OTHER_EOS does not
        assert body["ignore_eos"] is True and body["stop_token_ids"] == [EOS] and server.ignored == []
        without = {key: value for key, value in body.items() if key != "ignore_eos"} | {"stream": False}
        plain = _post(server, without)["choices"][0]
    babble = expected_ids(prompt, 8)
    assert sink.completed == {0: [*babble[:2], OTHER_EOS, *babble[3:6], EOS]}
    assert (plain["token_ids"], plain["finish_reason"], plain["stop_reason"]) == \
        ([*babble[:2], OTHER_EOS], "stop", OTHER_EOS)  # what vLLM answers to the same body without ignore_eos


def _post(server: StandIn, body: dict[str, Any]) -> Any:
    """POST a completion body straight to the stand-in (no harness in between); the parsed answer."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        connection.close()


def _one_by_one(server: StandIn, streams: bool, count: int, pause_s: float = 0.0) -> int:
    """Send `count` requests one after another (each after the last answered); the TCP connections they opened."""
    backend, sink = _started(server, greedy_spec(8), streams, concurrency=1)
    try:
        before = server.connections
        for i in range(count):
            time.sleep(pause_s)
            backend.submit(requests_for([[1, i, 2]], want_first=streams, start=i))
            sink.wait(i + 1)
        assert sink.failed == {} and len(sink.completed) == count, summary(sink)
        return server.connections - before
    finally:
        backend.stop()


@pytest.mark.parametrize("streams", [False, True])
def test_requests_one_after_another_reuse_the_kept_alive_connection(streams: bool) -> None:
    with StandIn(lengths=(2, 6)) as server:
        assert _one_by_one(server, streams, 8) == 0
        assert server.completions == 1 + 8 and server.connections < server.completions


def test_a_connection_the_server_closed_when_idle_is_not_reused_and_the_next_request_succeeds() -> None:
    with StandIn(keep_alive_s=0.3) as server:
        assert _one_by_one(server, False, 2, pause_s=0.8) == 2


def test_streams_reuse_the_connection_when_the_body_ends_after_done() -> None:
    """uvicorn writes a chunked body's end apart from its last `data: [DONE]` event: a client that stops reading at
    [DONE] leaves the body unfinished, and aiohttp then closes the connection instead of pooling it."""
    with StandIn(end_gap_s=0.05) as server:
        assert _one_by_one(server, True, 4) == 0


def test_answers_of_varying_lengths_and_delays_come_back_exactly_each_to_its_request() -> None:
    prompts = [[1, k, 5] for k in range(12)]
    lengths = {k: 1 + k % 7 for k in range(12)}
    with StandIn(lengths=_by_second(lengths), delay_s=lambda p: 0.06 * (2 - p[1] % 3),
                 token_delay_s=lambda p: 0.002 * (p[1] % 4)) as server:
        sink = _answers(server, greedy_spec(8), prompts, streams=True)
        assert server.max_in_flight == 4
    assert sink.completed == {i: [*expected_ids(p, lengths[i]), EOS] for i, p in enumerate(prompts)}
    order = [request_id for kind, request_id in sink.calls if kind == "complete"]
    assert order != sorted(order)  # later requests with shorter delays finished first
