"""The endpoint backend against a REAL vLLM server started as the Slurm serve stage renders it with
backend.server_stream_interval 8 (`--stream-interval 8`): the same ids per sample as without the interval, the
first SSE event carries exactly one token (TTFT is not delayed), later events carry several, and the manifest
records 8 as the server itself reports it (VLLM_SERVER_DEV_MODE=1: /server_info)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.backends.endpoint.factory import create
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.protocol import completion_body
from harness.checkpoint import converted_checkpoint
from harness.config import build_config
from harness.errors import ConfigError
from harness.slurm.serve import server_steps
from tests.integration import runs
from tests.integration.greedy import smoke_prompts
from tests.integration.runs import REPO
from tests.integration.vllm_server import VLLM_PYTHON, VllmServer, _free_port
from tests.unit.harness.backends.endpoint.support import RecordingSink, Setup, greedy_spec, requests_for

pytestmark = [pytest.mark.vllm, pytest.mark.model,
              pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is absent: run "
                                                                  "./scripts/install-vllm.sh")]
INTERVAL = 8
MAX_NEW = 24
NAME = "smollm2"
SAMPLES = 3


class RenderedServer(VllmServer):
    """The vLLM server exactly as `harness slurm` renders its step (python3 -> the vLLM environment's python), with
    the test's CPU settings passed through slurm.servers.args; VLLM_SERVER_DEV_MODE=1 so it reports its settings."""

    def __init__(self, checkpoint: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        config = build_config({
            "model": {"path": str(checkpoint)},
            "backend": {"kind": "endpoint", "urls": ["http://h:1"], "flavour": "vllm",
                        "server_stream_interval": INTERVAL},
            "slurm": {"nodes": 1, "gpus_per_node": 1, "request_gpus": False,
                      "servers": {"count": 1, "port": self.port, "bind_host": "127.0.0.1",
                                  "args": ["--served-model-name", NAME, "--enforce-eager", "--dtype", "float32",
                                           "--max-model-len", "2048", "--max-num-seqs", "16"]}}})
        [step] = server_steps(config, "/unused.llm_api.yaml")
        self.argv = [str(VLLM_PYTHON), *step.argv[1:]]
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "OMP_NUM_THREADS": "1", "VLLM_SERVER_DEV_MODE": "1"}
        with log.open("wb") as out:
            self.process = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderedServer]:
    started = RenderedServer(converted_checkpoint(), tmp_path_factory.mktemp("vllm-interval") / "server.log")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def prompts() -> list[list[int]]:
    return smoke_prompts(SAMPLES)


@pytest.fixture(scope="module")
def plain(server: RenderedServer, prompts: list[list[int]]) -> dict[int, list[int]]:
    """The ids per prompt without the interval: not streamed, vLLM applies none (FINAL_ONLY outputs)."""
    sink, _ = _run(server.url, prompts, streams=False)
    assert sink.failed == {}, server.tail()
    return sink.completed


def _run(url: str, prompts: list[list[int]], streams: bool,
         **options: object) -> tuple[RecordingSink, list[dict[str, Any]]]:
    """The backend over `prompts` (the in-process client); the sink and the report's engine rows."""
    backend = create(EndpointOptions(urls=[url], ready_timeout_s=300, read_timeout_s=120, client_workers=0,
                                     stream=streams, **options),  # type: ignore[arg-type]
                     Setup(sampling=greedy_spec(MAX_NEW), streams_first_token=streams))
    sink = RecordingSink()
    try:
        backend.start(sink)
        backend.submit(requests_for(prompts, want_first=streams))
        sink.wait(len(prompts), timeout_s=180)
        return sink, backend.report().sections["engines"]
    finally:
        backend.stop()


def _events(url: str, prompt: list[int]) -> list[list[int]]:
    """The token ids of each SSE event of one streamed completion (the body the vllm flavour sends)."""
    body = completion_body("vllm", NAME, prompt, greedy_spec(MAX_NEW), True)
    request = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(),
                                     {"content-type": "application/json"})
    events = []
    with urllib.request.urlopen(request, timeout=120) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(list(json.loads(line[6:])["choices"][0]["token_ids"] or []))
    return events


def test_interval_8_gives_the_same_ids_with_the_first_token_alone_in_the_first_event(
        server: RenderedServer, prompts: list[list[int]], plain: dict[int, list[int]]) -> None:
    assert ("--stream-interval", str(INTERVAL)) in zip(server.argv, server.argv[1:], strict=False)
    streamed, engines = _run(server.url, prompts, streams=True, server_stream_interval=INTERVAL)
    assert streamed.failed == {}, server.tail()
    assert streamed.completed == plain and all(len(ids) > INTERVAL + 1 for ids in plain.values())
    assert {i: [t for t, _ in f] for i, f in streamed.firsts.items()} == {i: [ids[0]] for i, ids in plain.items()}
    for index, prompt in enumerate(prompts):
        events = [ids for ids in _events(server.url, prompt) if ids]
        sizes = [len(ids) for ids in events]
        assert sizes[0] == 1, sizes  # the first token is sent at once, alone
        assert all(size == INTERVAL for size in sizes[1:-1]) and 1 <= sizes[-1] <= INTERVAL, sizes
        assert [t for ids in events for t in ids] == plain[index]
    [row] = engines
    assert (row["stream_interval"], row["stream_interval_source"]) == (
        INTERVAL, "/server_info vllm_config.scheduler_config.stream_interval (VLLM_SERVER_DEV_MODE=1)")


def test_a_config_that_contradicts_the_servers_interval_stops_the_start(server: RenderedServer,
                                                                        prompts: list[list[int]]) -> None:
    with pytest.raises(ConfigError, match=rf"streams {INTERVAL} tokens per event .* but "
                                          r"backend.server_stream_interval is 1$"):
        _run(server.url, prompts[:1], streams=True, server_stream_interval=1)


def test_a_server_run_records_the_interval_in_the_manifest_with_the_same_ids(
        server: RenderedServer, plain: dict[int, list[int]], tmp_path: Path) -> None:
    """`harness run` in Server (streamed, first tokens) with the same smoke prompts: the logged ids are the ids
    without the interval (the run's EOS is trimmed once by the SUT where it ends an answer)."""
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "harness", "run", "--mode", "accuracy", "--scenario", "Server", "--no-progress",
            "--output-dir", str(out), "--set", "backend.kind=endpoint", "--set", f"backend.urls={server.url}",
            "--set", f"backend.server_stream_interval={INTERVAL}", "--set", "backend.client_workers=0",
            "--set", f"dataset.max_samples={SAMPLES}", "--set", f"generation.max_new_tokens={MAX_NEW}",
            "--set", "loadgen.target_qps=4", "--set", "backend.ready_timeout_s=300"]
    process = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    assert process.returncode == 0, f"{process.stderr[-3000:]}\n{server.tail()}"
    manifest = runs.manifest(out)
    [row] = manifest["details"]["engines"]
    assert row["stream_interval"] == INTERVAL and row["url"] == server.url
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines() if line.strip()]
    assert len(samples) == SAMPLES and all(s["issued_ns"] < s["first_token_ns"] <= s["completed_ns"] for s in samples)
    logged = {idx: np.frombuffer(bytes.fromhex(data), dtype=np.int32).tolist()
              for idx, data in runs.accuracy_tokens(out).items()}
    assert sorted(logged) == list(range(SAMPLES))
    for index, ids in logged.items():
        assert ids in (plain[index], plain[index][:-1] if plain[index][-1] == 2 else None), (index, ids, plain[index])
