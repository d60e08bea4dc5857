"""The endpoint backend against REAL vLLM servers on the converted SmolLM2 checkpoint: ids equal the hf backend's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.base import BackendReport
from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.checkpoint import converted_checkpoint
from tests.integration.greedy import hf_greedy, load_float32, smoke_prompts
from tests.integration.vllm_server import VLLM_PYTHON, VllmServer
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for

pytestmark = [pytest.mark.vllm, pytest.mark.model,
              pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is absent: run "
                                                                  "./scripts/install-vllm.sh")]
MAX_NEW = 24
NAME = "smollm2"


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    return smoke_prompts(3)


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return converted_checkpoint()


@pytest.fixture(scope="module")
def reference(checkpoint: Path, prompts: list[list[int]]) -> list[list[int]]:
    """The hf backend's decoding: transformers float32, greedy, on the same checkpoint."""
    return hf_greedy(load_float32(checkpoint), prompts, max_new=MAX_NEW)


@pytest.fixture(scope="module")
def servers(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[VllmServer]]:
    logs = tmp_path_factory.mktemp("vllm")
    started = [VllmServer(checkpoint, NAME, logs / f"server{i}.log") for i in range(2)]  # start together
    try:
        yield started
    finally:
        for server in started:
            server.stop()


def run(urls: list[str], prompts: list[list[int]], streams: bool) -> tuple[RecordingSink, BackendReport]:
    backend = create(EndpointOptions(urls=urls, ready_timeout_s=300, read_timeout_s=120),
                     Setup(sampling=greedy_spec(MAX_NEW), streams_first_token=streams))
    sink = RecordingSink()
    try:
        info = backend.start(sink)
        assert info.versions and all(v not in ("", "unknown") for v in info.versions.values())
        backend.submit(requests_for(prompts, want_first=streams))
        sink.wait(len(prompts), timeout_s=180)
        return sink, backend.report()
    finally:
        backend.stop()


@pytest.mark.parametrize("streams", [False, True])
def test_vllm_ids_equal_the_hf_backends_greedy_ids(servers: list[VllmServer], prompts: list[list[int]],
                                                  reference: list[list[int]], streams: bool) -> None:
    sink, report = run([servers[0].url], prompts, streams)
    assert sink.failed == {}, {k: str(v) for k, v in sink.failed.items()}
    assert [sink.completed[i] for i in range(len(prompts))] == reference, servers[0].tail()
    assert report.sections["endpoint"]["model"] == NAME and report.load[0].tokens == sum(map(len, reference))
    if streams:
        assert {i: [t for t, _ in f] for i, f in sink.firsts.items()} == {i: [r[0]] for i, r in enumerate(reference)}


def test_two_servers_give_the_same_ids_as_one(servers: list[VllmServer], prompts: list[list[int]],
                                              reference: list[list[int]]) -> None:
    doubled = prompts * 2
    sink, report = run([s.url for s in servers], doubled, streams=True)
    assert sink.failed == {}, {k: str(v) for k, v in sink.failed.items()}
    assert [sink.completed[i] for i in range(len(doubled))] == reference * 2
    assert all(unit.requests > 0 for unit in report.load), report
