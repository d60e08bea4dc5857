"""serve* stages and the servers' stream interval: vLLM's --stream-interval from backend.server_stream_interval (or
slurm.servers.args, not both), trtllm-serve's stream_interval in the LLM API YAML, what the client config records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.endpoint.options import EndpointOptions
from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.slurm.render import render_job
from harness.slurm.serve import client_config, server_steps
from tests.integration.standins.cli_flags import parse_serve

SITE = {"gpus_per_node": 8, "container_image": "/lustre/images/trtllm-1.2.1.sqsh",
        "container_mounts": ["/lustre:/lustre"], "container_workdir": "/lustre/mlperf"}
MODEL = {"path": "/lustre/models/llama2-70b-fp8-hf", "tokenizer": "/lustre/models/Llama-2-70b-chat-hf"}


def _vllm(args: tuple[str, ...] = (), **backend: Any) -> RunConfig:
    return build_config({"model": MODEL, "backend": {"kind": "endpoint", "urls": ["http://h:1"], "flavour": "vllm",
                                                     **backend},
                         "slurm": {**SITE, "nodes": 1, "servers": {"count": 2, "tensor_parallel_size": 4,
                                                                   "args": list(args)}}})


def _trtllm(**backend: Any) -> RunConfig:
    return build_config({"model": MODEL, "slurm": {**SITE, "nodes": 1},
                         "backend": {"kind": "trtllm", "tensor_parallel_size": 8, **backend}})


def _recorded(config: RunConfig) -> int | None:
    steps = server_steps(config, "/lustre/jobs/serve.llm_api.yaml")
    backend = client_config(config, steps).backend
    assert isinstance(backend, EndpointOptions)
    return backend.server_stream_interval


def test_vllm_servers_start_with_the_configured_stream_interval_and_the_client_records_it() -> None:
    config = _vllm(("--max-num-seqs", "256"), server_stream_interval=8)
    for step in server_steps(config, "/x.yaml"):
        argv = list(step.argv)
        assert argv.count("--stream-interval") == 1
        assert argv[argv.index("--stream-interval") + 1] == "8"
        assert argv[-2:] == ["--max-num-seqs", "256"]  # slurm.servers.args still come last
    assert _recorded(config) == 8


def test_without_a_stream_interval_vllm_keeps_its_default_and_nothing_is_recorded() -> None:
    config = _vllm()
    assert all("--stream-interval" not in step.argv for step in server_steps(config, "/x.yaml"))
    assert _recorded(config) is None


@pytest.mark.parametrize("args", [("--stream-interval", "4"), ("--stream-interval=4",)])
def test_a_stream_interval_in_the_servers_args_is_what_the_client_records(args: tuple[str, ...]) -> None:
    config = _vllm(args)
    [first, _] = server_steps(config, "/x.yaml")
    assert sum(arg.startswith("--stream-interval") for arg in first.argv) == 1  # the user's, not a second one
    assert _recorded(config) == 4


def test_a_stream_interval_given_both_ways_is_refused_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"given twice: backend.server_stream_interval 8 and slurm.servers.args "
                                          r"--stream-interval 4") as caught:
        server_steps(_vllm(("--stream-interval", "4"), server_stream_interval=8), "/x.yaml")
    assert "remove --stream-interval from slurm.servers.args" in (caught.value.hint or "")


@pytest.mark.parametrize("args", [("--stream-interval", "0"), ("--stream-interval=x",), ("--stream-interval",)])
def test_a_bad_stream_interval_in_the_servers_args_is_refused(args: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError, match=r"slurm.servers.args gives vLLM --stream-interval .*expected a whole number"):
        server_steps(_vllm(args), "/x.yaml")


def test_trtllm_serve_takes_the_stream_interval_in_its_llm_api_yaml_and_the_client_records_it(tmp_path: Path) -> None:
    config = _trtllm(llm_args={"stream_interval": 8})
    job = render_job("serve", config, tmp_path)
    extra = yaml.safe_load((tmp_path / "serve.llm_api.yaml").read_text())
    assert extra["stream_interval"] == 8
    [step] = server_steps(config, str(tmp_path / "serve.llm_api.yaml"))
    parse_serve(list(step.argv[2:]))  # trtllm-serve 1.2.1 has no stream-interval flag: none was rendered
    assert not any("stream" in arg for arg in step.argv)
    copy = RunConfig.model_validate(yaml.safe_load(job.config_path.read_text()))
    assert copy.backend.server_stream_interval == 8  # type: ignore[union-attr]


def test_trtllm_serve_without_a_stream_interval_records_none() -> None:
    assert _recorded(_trtllm()) is None


def test_the_tensorrt_engine_backend_has_no_stream_interval_so_setting_it_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"backend.backend is 'tensorrt': TensorRT-LLM takes stream_interval for "
                                          r"the PyTorch backend only") as caught:
        server_steps(_trtllm(backend="tensorrt", llm_args={"stream_interval": 8}), "/x.yaml")
    assert caught.value.hint == "use backend.backend: pytorch, or remove backend.llm_args.stream_interval"


@pytest.mark.parametrize("value", [0, True, "8", 2.5])
def test_a_bad_trtllm_stream_interval_is_refused_with_the_value(value: object) -> None:
    with pytest.raises(ConfigError, match=rf"backend.llm_args.stream_interval is {value!r}; expected a whole number"):
        server_steps(_trtllm(llm_args={"stream_interval": value}), "/x.yaml")
