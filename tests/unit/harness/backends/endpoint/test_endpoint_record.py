"""What the endpoint backend records per URL (engine, version, served model, prefix caching), and what provenance
makes of it: a run against a stand-in that reports itself as vLLM, on a system described as vLLM."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.artifacts import Manifest
from submission.provenance import caching_problems, contradictions, deviations, run_facts
from submission.system import load_system
from tests.unit.harness.backends.endpoint.standin import StandIn
from tests.unit.harness.backends.endpoint.support import engine_rows
from tests.unit.submission import trees

ROOT = "/models/Llama-2-70b-chat-hf"


def _engines(url: str, **options: Any) -> list[dict[str, Any]]:
    return engine_rows(url, **options)


@pytest.mark.parametrize(("caching", "state"), [(False, "off"), (True, "on")])
def test_a_server_reporting_itself_as_vllm_is_recorded_with_its_version_model_and_caching(caching: bool,
                                                                                        state: str) -> None:
    with StandIn(version="0.32.0", prefix_caching=caching, root=ROOT) as server:
        [row] = _engines(server.url)
    assert row == {"url": server.url, "engine": "vllm", "version": "0.32.0", "model": "standin", "model_root": ROOT,
                   "prefix_caching": state,
                   "prefix_caching_source": "/metrics vllm:cache_config_info enable_prefix_caching",
                   "settings": {"enable_prefix_caching": str(caching), "prefix_caching_hash_algo": "sha256",
                                "block_size": "16", "cache_dtype": "auto", "num_gpu_blocks": "3640"},
                   "stream_interval": "not reported",
                   "stream_interval_source": "vLLM reports it only under VLLM_SERVER_DEV_MODE=1 (/server_info); "
                                             "backend.server_stream_interval is not set"}


def test_trtllm_serve_exposes_no_setting_so_it_is_unknown_unless_the_harness_rendered_the_servers_start() -> None:
    with StandIn() as server:
        [unknown] = _engines(server.url, flavour="trtllm-serve")
        [rendered] = _engines(server.url, flavour="trtllm-serve", server_prefix_caching="off")
    assert (unknown["engine"], unknown["prefix_caching"]) == ("trtllm-serve", "unknown")
    assert unknown["prefix_caching_source"] == "trtllm-serve does not expose kv_cache_config.enable_block_reuse"
    assert rendered["prefix_caching"] == "off" and "backend.server_prefix_caching" in rendered["prefix_caching_source"]


def test_a_server_that_reports_its_caching_wins_over_what_the_config_declares() -> None:
    with StandIn(prefix_caching=True) as server:
        [row] = _engines(server.url, server_prefix_caching="off")
    assert row["prefix_caching"] == "on"


# ---- a whole `harness run` against the stand-in, judged by the packager's provenance ----

CPU_SYSTEM = {"accelerators_per_node": "0", "accelerator_model_name": "N/A", "accelerator_memory_capacity": "N/A",
              "accelerator_memory_configuration": "N/A", "accelerator_host_interconnect": "N/A",
              "accelerator_interconnect": "N/A", "number_of_nodes": 1, "framework": "vLLM 0.32.0 (CPU)"}


@pytest.fixture(scope="module")
def vllm_system(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("system") / "cpu_vllm.json"
    path.write_text(json.dumps(json.loads(trees.SYSTEM.read_text()) | CPU_SYSTEM))
    return path


@pytest.fixture(scope="module")
def endpoint_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, Path]]:
    """One Offline performance run per caching setting, each against a stand-in that reports itself as vLLM."""
    root = tmp_path_factory.mktemp("endpoint-record")
    found = {}
    for caching in (False, True):
        with StandIn(version="0.32.0", prefix_caching=caching, root=ROOT) as server:
            out = root / f"caching-{caching}"
            process = trees.harness_run(out, "Offline", "performance", "backend.kind=endpoint",
                                        f"backend.urls={server.url}", "dataset.max_samples=8",
                                        "generation.max_new_tokens=8", fake=False)
            assert (out / "manifest.json").is_file(), process.stderr[-3000:]
            found[caching] = out
    yield found


def _facts(run: Path) -> Any:
    manifest = Manifest.model_validate_json((run / "manifest.json").read_text())
    return run_facts("Performance", run, manifest, yaml.safe_load((run / "config.yaml").read_text())), manifest


def test_an_endpoint_run_served_by_vllm_has_no_contradiction_with_a_system_described_as_vllm(
        endpoint_runs: dict[bool, Path], vllm_system: Path) -> None:
    facts, manifest = _facts(endpoint_runs[False])
    [engine] = facts.engines
    assert (engine.engine, engine.version, engine.model_root, engine.prefix_caching) == ("vllm", "0.32.0", ROOT, "off")
    assert (facts.model, facts.weights, facts.served_engine) == ("standin", ROOT, "vllm 0.32.0")
    assert contradictions([facts], load_system(vllm_system), "cpu_vllm.json") == []
    assert caching_problems([facts]) == []
    assert not any("caching" in line for line in deviations(facts, manifest))


def test_the_same_run_contradicts_a_system_described_as_another_engine_or_version(
        endpoint_runs: dict[bool, Path], tmp_path: Path) -> None:
    facts, _ = _facts(endpoint_runs[False])
    for framework, fragment in (("TensorRT-LLM 1.2.1", "expected the framework to name vLLM"),
                                ("vLLM 0.31.0 (CPU)", "expected the framework to name version 0.32.0")):
        path = tmp_path / "sys.json"
        path.write_text(json.dumps(json.loads(trees.SYSTEM.read_text()) | CPU_SYSTEM | {"framework": framework}))
        [line] = contradictions([facts], load_system(path), "sys.json")
        assert line.startswith(f"sys.json: framework is {framework!r} but the Performance run") and fragment in line


def test_an_endpoint_run_with_prefix_caching_on_is_named_with_the_url_and_the_fix(
        endpoint_runs: dict[bool, Path], vllm_system: Path) -> None:
    facts, manifest = _facts(endpoint_runs[True])
    url = facts.engines[0].unit
    line = f"vLLM --enable-prefix-caching is on at {url}; start it with --no-enable-prefix-caching"
    assert caching_problems([facts]) == [f"the Performance run {endpoint_runs[True]}: {line}"]
    assert f"cross-query prefix caching (prohibited in the closed division): {line}" in deviations(facts, manifest)
    assert contradictions([facts], load_system(vllm_system), "cpu_vllm.json") == []  # caching is its own check
