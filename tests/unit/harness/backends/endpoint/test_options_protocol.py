"""EndpointOptions validation and the per-flavour wire format (request bodies, parsing of answers)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.protocol import (
    ProtocolError,
    completion_body,
    int32_ids,
    parse_choice,
    sse_data,
    sse_payloads,
    stream_events,
)
from harness.errors import ConfigError
from tests.unit.harness.backends.endpoint.support import greedy_spec


def test_urls_are_normalised_and_bad_or_duplicate_ones_refused() -> None:
    options = EndpointOptions(urls=["http://127.0.0.1:8000/v1/", "https://h:9/prefix/"])
    assert options.urls == ("http://127.0.0.1:8000", "https://h:9/prefix")
    for bad in (["ftp://h:1"], ["127.0.0.1:8000"], ["http://h:99999"], ["http://h:1?x=1"], []):
        with pytest.raises(ValidationError):
            EndpointOptions(urls=bad)
    with pytest.raises(ValidationError, match="more than once"):
        EndpointOptions(urls=["http://h:1", "http://h:1/v1"])
    with pytest.raises(ValidationError):
        EndpointOptions(urls=["http://h:1"], flavour="openai")


def test_replicas_get_one_url_each_and_stream_follows_the_scenario() -> None:
    options = EndpointOptions(urls=["http://a:1", "http://b:2"])
    assert [options.for_replica(i).urls for i in range(3)] == [("http://a:1",), ("http://b:2",), ("http://a:1",)]
    single = EndpointOptions(urls=["http://a:1"])
    assert single.for_replica(5) is single
    assert single.streams(True) and not single.streams(False)
    assert EndpointOptions(urls=["http://a:1"], stream=True).streams(False)


def test_vllm_body_sends_ids_greedy_and_stops_only_at_the_harness_eos() -> None:
    body = completion_body("vllm", "m", (1, 5, 7), greedy_spec(max_new=9, min_new=3, eos=2), stream=True)
    assert body["prompt"] == [1, 5, 7] and body["max_tokens"] == 9 and body["min_tokens"] == 3
    assert body["temperature"] == 0.0 and body["stream"] is True and body["stop"] == []
    assert body["return_token_ids"] is True and body["ignore_eos"] is True and body["stop_token_ids"] == [2]


def test_each_flavour_asks_for_ids_its_own_way() -> None:
    spec = greedy_spec()
    trt = completion_body("trtllm-serve", "m", [1], spec, stream=False)
    assert trt["detokenize"] is False and "return_token_ids" not in trt and "ignore_eos" not in trt
    sgl = completion_body("sglang", "m", [1], spec, stream=False)
    assert sgl["return_token_ids"] is True and sgl["stop_token_ids"] == [2]
    generic = completion_body("generic", "m", [1], spec, stream=False)
    assert not {"return_token_ids", "detokenize", "stop_token_ids", "min_tokens"} & set(generic)


def test_beam_search_is_refused() -> None:
    spec = greedy_spec().__class__(**{**greedy_spec().__dict__, "num_beams": 4})
    with pytest.raises(ConfigError, match="num_beams"):
        completion_body("vllm", "m", [1], spec, stream=False)


def test_answers_without_ids_or_with_an_error_are_protocol_errors() -> None:
    assert parse_choice("vllm", {"choices": [{"token_ids": [4, 5], "finish_reason": "stop"}]}).token_ids == [4, 5]
    assert parse_choice("vllm", {"choices": []}).token_ids == []
    assert parse_choice("generic", {"choices": [{"text": "hi"}]}).token_ids is None
    with pytest.raises(ProtocolError, match="return_token_ids"):
        parse_choice("vllm", {"choices": [{"text": "hi", "token_ids": None}]})
    with pytest.raises(ProtocolError, match="detokenize: false"):
        parse_choice("trtllm-serve", {"choices": [{"text": "hi"}]})
    with pytest.raises(ProtocolError, match="engine died"):
        parse_choice("sglang", {"error": {"message": "engine died"}})
    with pytest.raises(ProtocolError, match="integers"):
        parse_choice("vllm", {"choices": [{"token_ids": ["a"]}]})
    assert sse_data(b"data: {}\n") == b"{}" and sse_data(b": ping\n") is None and sse_data(b"\n") is None
    with pytest.raises(ProtocolError, match="choices\\[0\\] is not an object"):
        parse_choice("vllm", {"choices": [[4, 5]]})


def test_sse_payloads_keeps_data_lines_up_to_done() -> None:
    block = b": ping\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:{\"b\":2}\n\ndata:\n\ndata: [DONE]\n\ndata: {\"c\":3}\n"
    assert sse_payloads(block) == ([b'{"a":1}', b'{"b":2}'], True)
    assert sse_payloads(b'data: {"a":1}\n\n') == ([b'{"a":1}'], False)
    assert sse_payloads(b"\n\n") == ([], False)


def event(ids: object, finish: object = None, **extra: object) -> bytes:
    import json

    return json.dumps({"id": "c", "choices": [{"index": 0, "text": "t", "token_ids": ids, "finish_reason": finish}],
                       **extra}).encode()


def test_stream_events_appends_every_events_ids_in_order_and_keeps_the_last_finish_reason() -> None:
    ids: list[int] = []
    texts: list[str] = []
    finish = stream_events("vllm", [event([5]), event([6, 7]), event([], "length"), b'{"choices":[],"usage":{}}'],
                           ids, texts)
    assert ids == [5, 6, 7] and finish == "length"
    assert stream_events("vllm", [event([8])], ids, texts) is None and ids == [5, 6, 7, 8]
    generic: list[str] = []
    assert stream_events("generic", [event(None), event(None, "stop")], ids, generic) == "stop"
    assert generic == ["t", "t"] and ids == [5, 6, 7, 8]


@pytest.mark.parametrize(("payload", "message"), [
    (b'{"choices":[{"token_ids":[1]', "broken SSE event"),
    (event([1], error={"message": "engine died"}), "server error: engine died"),
    (b'{"error":"overloaded"}', "server error: overloaded"),
    (event(None), "return_token_ids"),
    (b'{"choices":[7]}', "is not an object"),
    (b'{"data":[]}', "no 'choices' list"),
    (b"[1, 2]", "expected a JSON object"),
])
def test_stream_events_names_what_is_wrong_with_an_event(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        stream_events("vllm", [event([1]), payload], [], [])


def test_int32_ids_refuses_what_is_not_an_int32_integer() -> None:
    assert list(int32_ids([0, 5, 2**31 - 1])) == [0, 5, 2**31 - 1] and int32_ids([]).typecode == "i"
    for bad in (["a"], [1.0], [2**31], [None], [[1]]):
        with pytest.raises(ProtocolError, match="not a list of integers"):
            int32_ids(bad)  # type: ignore[arg-type]


def test_a_single_url_string_is_a_list_of_one() -> None:
    assert EndpointOptions(urls="http://127.0.0.1:8000/v1").urls == ("http://127.0.0.1:8000",)  # type: ignore[arg-type]


def test_retokenize_is_refused_for_flavours_that_return_exact_ids() -> None:
    with pytest.raises(ValueError, match="generic only; vllm returns the generated token ids exactly"):
        EndpointOptions(urls=["http://h:1"], retokenize=True)
    assert EndpointOptions(urls=["http://h:1"], flavour="generic", retokenize=True).deviations()
