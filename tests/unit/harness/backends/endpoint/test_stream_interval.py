"""Servers that coalesce streamed tokens (--stream-interval N): the client's first token comes from the first event at
once and the ids stay exact; each URL's interval is recorded (the server's own report, else
backend.server_stream_interval, else "not reported"), and a report that contradicts the config stops the start."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.errors import ConfigError
from tests.unit.harness.backends.endpoint.standin import Answer, StandIn, _chunk, _head, expected_ids
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, engine_rows, greedy_spec, requests_for
from tests.unit.submission import trees

PROMPTS = [[1, 2 + i, 30 + i] for i in range(4)]
DEV_INFO = "/server_info?config_format=json"  # vLLM's development route (VLLM_SERVER_DEV_MODE=1)


class CoalescingStandIn(StandIn):
    """The stand-in streaming as a server started with --stream-interval N does (vLLM 0.32.0
    `vllm/v1/engine/output_processor.py::RequestState.make_request_output`: the first token alone, then an event once
    N new tokens exist, the rest with the finish); `reports`: where it tells N (None: nowhere, "sglang": its
    /server_info ServerArgs, "vllm": the development /server_info's vllm_config)."""

    def __init__(self, interval: int, reports: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.interval = interval
        self.reports = reports
        self.events: list[list[int]] = []  # per streamed request, the token count of each event

    async def _route(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter, close: bool) -> bool:
        if method == "GET" and self.reports == "sglang" and path == "/server_info":
            info = {"version": "0.5.4", "model_path": "/models/standin", "disable_radix_cache": True,
                    "stream_interval": self.interval}
            return await self._json(writer, 200, info, close)
        if method == "GET" and self.reports == "vllm" and path == DEV_INFO:
            info = {"vllm_config": {"scheduler_config": {"stream_interval": self.interval, "max_num_seqs": 16}}}
            return await self._json(writer, 200, info, close)
        return await super()._route(method, path, body, writer, close)

    async def _stream(self, writer: asyncio.StreamWriter, close: bool, prompt: list[int], answer: Answer,
                      with_ids: bool, per_token: float) -> bool:
        ids = answer.ids
        bounds = [0, 1, *range(1 + self.interval, len(ids), self.interval), len(ids)]
        groups = [ids[start:end] for start, end in itertools.pairwise(bounds) if end > start]
        self.events.append([len(group) for group in groups])
        writer.write(_head("200 OK", "content-type: text/event-stream; charset=utf-8", "transfer-encoding: chunked",
                           close))
        for index, group in enumerate(groups):
            if index:
                await asyncio.sleep(per_token * len(group))  # the tokens of this event are generated first
            last = index == len(groups) - 1
            choice = {"index": 0, "text": "x" * len(group), "logprobs": None,
                      "finish_reason": answer.finish_reason if last else None,
                      "stop_reason": answer.stop_reason if last else None,
                      "token_ids": group if with_ids else None,
                      "prompt_token_ids": prompt if with_ids and index == 0 else None}
            event = json.dumps({"object": "text_completion", "model": self.model, "choices": [choice]}).encode()
            writer.write(_chunk(b"data: " + event + b"\n\n"))
            await writer.drain()
        writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()
        return True


def _engines(url: str, **options: Any) -> list[dict[str, Any]]:
    return engine_rows(url, client_workers=0, **options)


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "workers"])
def test_the_first_token_comes_from_the_first_event_at_once_and_the_ids_stay_exact(workers: int) -> None:
    max_new, delay = 20, 0.1  # events of 1, 8, 8 and 3 tokens; the second one leaves 0.8 s after the first
    with CoalescingStandIn(8, token_delay_s=delay) as server:
        backend = create(EndpointOptions(urls=[server.url], client_workers=workers, server_stream_interval=8),
                         Setup(sampling=greedy_spec(max_new), streams_first_token=True))
        sink = RecordingSink()
        try:
            backend.start(sink)
            sent = time.monotonic()
            backend.submit(requests_for(PROMPTS, want_first=True))
            sink.wait(len(PROMPTS), timeout_s=60)
        finally:
            backend.stop()
    assert sink.failed == {}
    assert sink.completed == {i: expected_ids(p, max_new) for i, p in enumerate(PROMPTS)}
    assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: [p[0]] for i, p in sink.completed.items()}
    assert server.events[-len(PROMPTS):] == [[1, 8, 8, 3]] * len(PROMPTS)  # the warm-up's events come first
    latest_first = max(at for firsts in sink.firsts.values() for _, at in firsts)
    assert latest_first - sent < 8 * delay, "a first token waited for the second event"


def test_a_server_that_reports_no_interval_records_the_configured_one_or_not_reported() -> None:
    with CoalescingStandIn(8) as server:
        [unset] = _engines(server.url)
        [declared] = _engines(server.url, server_stream_interval=8)
    assert unset["stream_interval"] == "not reported"
    assert unset["stream_interval_source"] == ("vLLM reports it only under VLLM_SERVER_DEV_MODE=1 (/server_info); "
                                               "backend.server_stream_interval is not set")
    assert (declared["stream_interval"], declared["stream_interval_source"]) == (
        8, "backend.server_stream_interval (the servers' start as the config states it)")


@pytest.mark.parametrize(("flavour", "reports", "source"), [
    ("vllm", "vllm", "/server_info vllm_config.scheduler_config.stream_interval (VLLM_SERVER_DEV_MODE=1)"),
    ("sglang", "sglang", "/server_info stream_interval")])
def test_the_interval_a_server_reports_is_recorded_and_must_match_the_config(flavour: str, reports: str,
                                                                            source: str) -> None:
    with CoalescingStandIn(8, reports) as server:
        [reported] = _engines(server.url, flavour=flavour)
        [agreed] = _engines(server.url, flavour=flavour, server_stream_interval=8)
        with pytest.raises(ConfigError) as caught:
            _engines(server.url, flavour=flavour, server_stream_interval=4)
    assert (reported["stream_interval"], reported["stream_interval_source"]) == (8, source)
    assert (agreed["stream_interval"], agreed["stream_interval_source"]) == (8, source)
    assert str(caught.value) == (f"{server.url}: the {flavour} server streams 8 tokens per event ({source}), but "
                                 "backend.server_stream_interval is 4")
    assert caught.value.hint == ("set backend.server_stream_interval: 8 (or remove it), or restart the server with "
                                 "--stream-interval 4")
    assert "\n" not in str(caught.value)


def test_trtllm_serve_exposes_no_interval_so_what_the_config_says_is_recorded() -> None:
    with StandIn() as server:
        [unset] = _engines(server.url, flavour="trtllm-serve")
        [declared] = _engines(server.url, flavour="trtllm-serve", server_stream_interval=16)
    assert (unset["stream_interval"], unset["stream_interval_source"]) == (
        "not reported", "trtllm-serve does not expose stream_interval; backend.server_stream_interval is not set")
    assert declared["stream_interval"] == 16


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "eight"])
def test_the_option_takes_a_whole_number_of_tokens_only(value: object) -> None:
    with pytest.raises(ValueError, match=r"expected a whole number of tokens >= 1"):
        EndpointOptions(urls=["http://h:1"], server_stream_interval=value)  # type: ignore[arg-type]
    given = EndpointOptions(urls=["http://h:1"], server_stream_interval="8")  # type: ignore[arg-type]  # from --set
    assert given.server_stream_interval == 8
    assert EndpointOptions(urls=["http://h:1"]).server_stream_interval is None


def test_a_harness_run_against_a_coalescing_server_records_its_interval_in_the_manifest(tmp_path: Path) -> None:
    """Streamed (backend.stream true) through events of 1 + 8 + ... tokens; the manifest's engine row says 8."""
    with CoalescingStandIn(8, "vllm", version="0.32.0") as server:
        out = tmp_path / "run"
        process = trees.harness_run(out, "Offline", "performance", "backend.kind=endpoint",
                                    f"backend.urls={server.url}", "backend.stream=true", "dataset.max_samples=8",
                                    "generation.max_new_tokens=12", fake=False)
    assert (out / "manifest.json").is_file(), process.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    [row] = manifest["details"]["engines"]
    assert (row["stream_interval"], row["stream_interval_source"]) == (
        8, "/server_info vllm_config.scheduler_config.stream_interval (VLLM_SERVER_DEV_MODE=1)")
    assert process.returncode == 0, process.stderr[-3000:]
    assert server.events and all(sizes[0] == 1 and max(sizes) == 8 for sizes in server.events[1:])
