"""serve* stages: server steps per replica for the three layouts, the client config, and the refusals."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.endpoint.options import EndpointOptions
from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.slurm.render import render_job
from harness.slurm.serve import PLACEHOLDER_HOST, client_config, server_steps
from tests.integration.standins.cli_flags import parse_serve

SITE = {"gpus_per_node": 8, "container_image": "/lustre/images/trtllm-1.2.1.sqsh",
        "container_mounts": ["/lustre:/lustre"], "container_workdir": "/lustre/mlperf"}
MODEL = {"path": "/lustre/models/llama2-70b-fp8-hf", "tokenizer": "/lustre/models/Llama-2-70b-chat-hf"}


def _config(tp: int, pp: int, nodes: int, replicas: int = 1, **backend: Any) -> RunConfig:
    return build_config({"model": MODEL, "distributed": {"replicas": replicas}, "slurm": {**SITE, "nodes": nodes},
                         "backend": {"kind": "trtllm", "tensor_parallel_size": tp, "pipeline_parallel_size": pp,
                                     **backend}})


LAYOUTS = {  # name -> (config, [(first node, nodes, ranks)] per server)
    "seed TP8xPP2 on 2 nodes": (_config(8, 2, 2), [(0, 2, 16)]),
    "two TP8, one per node": (_config(8, 1, 2, replicas=2), [(0, 1, 8), (1, 1, 8)]),
    "eight TP1 on one node": (_config(1, 1, 1, replicas=8), [(0, 1, 1)] * 8),
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_places_one_launcher_step_per_replica(name: str) -> None:
    config, expected = LAYOUTS[name]
    steps = server_steps(config, "/lustre/jobs/serve.llm_api.yaml")
    assert [(s.first_node, s.nodes, s.ntasks) for s in steps] == expected
    assert [s.port for s in steps] == list(range(8000, 8000 + len(steps)))
    for step in steps:
        assert step.argv[:3] == ("trtllm-llmapi-launch", "trtllm-serve", MODEL["path"])
        args = parse_serve(list(step.argv[2:]))  # the 1.2.1 click definition accepts every flag
        assert (args.tensor_parallel_size, args.port, args.host) == (config.backend.tensor_parallel_size, step.port,
                                                                     "0.0.0.0")
        assert step.mpi and step.gpus_per_node == min(8, step.ntasks)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_each_layout_renders_a_script_that_passes_bash_n_and_shellcheck(name: str, tmp_path: Path) -> None:
    job = render_job("serve", LAYOUTS[name][0], tmp_path)
    assert subprocess.run(["bash", "-n", str(job.script_path)], capture_output=True).returncode == 0
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    lint = subprocess.run(["shellcheck", "--severity=style", str(job.script_path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    assert job.text.count("SERVER_PIDS+=") == len(LAYOUTS[name][1])
    assert '--set "backend.urls=[${SERVER_URLS}]"' in job.text


def test_the_config_copy_is_the_endpoint_client_and_the_llm_api_yaml_carries_what_has_no_flag(tmp_path: Path) -> None:
    config = _config(8, 1, 2, replicas=2, kv_cache_dtype="fp8", enable_chunked_prefill=True,
                     llm_args={"cuda_graph_config": {"max_batch_size": 512}})
    job = render_job("serve_accuracy", config, tmp_path)
    copy = RunConfig.model_validate(yaml.safe_load(job.config_path.read_text()))
    assert isinstance(copy.backend, EndpointOptions)
    assert (copy.backend.flavour, copy.backend.model, copy.distributed.replicas) == ("trtllm-serve", MODEL["path"], 1)
    assert copy.backend.urls == (f"http://{PLACEHOLDER_HOST}:8000", f"http://{PLACEHOLDER_HOST}:8001")
    extra = yaml.safe_load((tmp_path / "serve_accuracy.llm_api.yaml").read_text())
    assert extra == {"kv_cache_config": {"free_gpu_memory_fraction": 0.9, "enable_block_reuse": False, "dtype": "fp8"},
                     "enable_chunked_prefill": True, "cuda_graph_config": {"max_batch_size": 512}}
    assert "--mode accuracy" in job.text


def test_a_layout_that_does_not_fill_the_nodes_is_refused_with_the_node_count() -> None:
    with pytest.raises(ConfigError, match=r"need 2 node\(s\), but slurm.nodes is 1") as caught:
        server_steps(_config(8, 2, 1), "/x.yaml")
    assert caught.value.hint == "set slurm.nodes: 2, or change the count"
    with pytest.raises(ConfigError, match="do not split into 3-GPU servers"):
        server_steps(_config(3, 1, 1), "/x.yaml")


def test_vllm_servers_come_from_the_endpoint_flavour() -> None:
    config = build_config({"model": MODEL, "backend": {"kind": "endpoint", "urls": ["http://h:1"], "flavour": "vllm"},
                           "slurm": {**SITE, "nodes": 1, "servers": {"count": 4, "tensor_parallel_size": 2}}})
    steps = server_steps(config, "/x.yaml")
    assert [(s.first_node, s.ntasks, s.gpus_per_node, s.mpi) for s in steps] == [(0, 1, 2, False)] * 4
    assert steps[3].argv == ("python3", "-m", "vllm.entrypoints.openai.api_server", "--model", MODEL["path"],
                             "--host", "0.0.0.0", "--port", "8003", "--tensor-parallel-size", "2",
                             "--tokenizer", MODEL["tokenizer"], "--no-enable-prefix-caching")
    assert client_config(config, steps).backend.flavour == "vllm"  # type: ignore[union-attr]


@pytest.mark.parametrize(("args", "expected"), [((), "off"), (("--enable-prefix-caching",), "on"),
                                                (("--enable-prefix-caching", "--no-enable-prefix-caching"), "off")])
def test_vllm_servers_start_without_cross_query_prefix_caching_unless_the_args_turn_it_on(
        args: tuple[str, ...], expected: str) -> None:
    config = build_config({"model": MODEL, "backend": {"kind": "endpoint", "urls": ["http://h:1"], "flavour": "vllm"},
                           "slurm": {**SITE, "nodes": 1, "servers": {"count": 1, "tensor_parallel_size": 8,
                                                                     "args": list(args)}}})
    [step] = server_steps(config, "/x.yaml")
    rendered, given = step.argv[:len(step.argv) - len(args)], step.argv[len(step.argv) - len(args):]
    assert given == args and ("--no-enable-prefix-caching" in rendered) is (expected == "off")
    assert client_config(config, (step,)).backend.server_prefix_caching == expected  # type: ignore[union-attr]


@pytest.mark.parametrize(("backend", "reuse", "expected"), [
    ({}, False, "off"),
    ({"enable_block_reuse": True}, True, "on"),
    ({"llm_args": {"kv_cache_config": {"free_gpu_memory_fraction": 0.8}}}, None, "on"),  # TensorRT-LLM's default
])
def test_trtllm_serve_yaml_turns_block_reuse_off_unless_the_config_turns_it_on(
        backend: dict[str, Any], reuse: bool | None, expected: str, tmp_path: Path) -> None:
    config = _config(8, 1, 1, **backend)
    job = render_job("serve", config, tmp_path)
    extra = yaml.safe_load((tmp_path / "serve.llm_api.yaml").read_text())
    assert extra["kv_cache_config"].get("enable_block_reuse") is reuse
    copy = RunConfig.model_validate(yaml.safe_load(job.config_path.read_text()))
    assert copy.backend.server_prefix_caching == expected  # type: ignore[union-attr]


def test_other_backends_cannot_be_served() -> None:
    with pytest.raises(ConfigError, match="serve stages start trtllm-serve"):
        server_steps(build_config({"backend": {"kind": "fake"}, "slurm": {"gpus_per_node": 8}}), "/x.yaml")


def test_nvidia_runtime_settings_go_into_the_llm_api_yaml_as_llm_arguments(tmp_path: Path) -> None:
    """preset h200 on trtllm-serve: the flags it has (max_batch_size, max_num_tokens), the rest as LLM args."""
    from tests.integration.standins.cli_flags import LLM_API_KEYS

    config = _config(1, 1, 1, replicas=8, preset="h200", cuda_graph_batch_sizes=[1, 8, 64],
                     disable_overlap_scheduler=False)
    job = render_job("serve", config, tmp_path)
    extra = yaml.safe_load((tmp_path / "serve.llm_api.yaml").read_text())
    assert extra["scheduler_config"] == {"capacity_scheduler_policy": "MAX_UTILIZATION"}
    assert extra["cuda_graph_config"] == {"batch_sizes": [1, 8, 64]} and extra["disable_overlap_scheduler"] is False
    assert extra["enable_chunked_prefill"] is True and set(extra) <= LLM_API_KEYS
    server = next(line for line in job.text.splitlines() if "trtllm-serve" in line and "--port" in line)
    args = parse_serve(server.split("trtllm-llmapi-launch ", 1)[1].removesuffix(" &").split()[1:])
    assert (args.max_batch_size, args.max_num_tokens, args.free_gpu_memory_fraction) == (2048, 1536, 0.9)
