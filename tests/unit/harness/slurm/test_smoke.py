"""The in-image smoke stage: which entry points it checks, its scripts' syntax, and the probe run for real in bash.

The probe runs here with the stand-ins of tests/integration/standins (trtllm-build, trtllm-serve, quantize.py,
convert_checkpoint.py and ucx_info behave like the real --help / -v / -d); PMIx is given by setting PMIX_RANK
as srun --mpi=pmix does. tests/integration/test_slurm_smoke.py runs it under the local Slurm cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.slurm.render import render_job
from harness.slurm.submit import with_smoke

REPO = Path(__file__).resolve().parents[4]
STANDINS = REPO / "tests" / "integration" / "standins"
ENGINE = "/lustre/models/trtllm/engine_16gpu_tp8_pp2"


def _config(*overrides: str, preset: str = "h100-fp8", **slurm: Any) -> RunConfig:
    return build_config({
        "model": {"path": ENGINE, "tokenizer": "/lustre/models/Llama-2-70b-chat-hf"},
        "backend": {"kind": "trtllm", "backend": "tensorrt", "tensor_parallel_size": 8, "pipeline_parallel_size": 2,
                    "stages": {"preset": preset, "trtllm_examples": str(STANDINS / "examples")}},
        "slurm": {"nodes": 2, "ntasks_per_node": 8, "gpus_per_node": 8, "container_image": "/img/trtllm.sqsh",
                  "container_mounts": ["/lustre:/lustre", f"{REPO}:{REPO}"], "python": sys.executable,
                  "env": {"UCX_NET_DEVICES": "mlx5_0:1", "UCX_IB_GID_INDEX": "3", "NCCL_IB_HCA": "mlx5_0",
                          "NCCL_SOCKET_IFNAME": "lo"}, **slurm}}, list(overrides))


def _rank0_checks(probe: str) -> list[str]:
    block = probe.split('if [ "$rank" = 0 ]; then\n', 1)[1].split("\nfi\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_the_probe_checks_every_entry_point_of_the_pipelines_jobs(tmp_path: Path) -> None:
    job = render_job("smoke", _config(), tmp_path, extra={"stages": "smoke,quantize,build,run,accuracy"})
    probe = (tmp_path / "smoke.probe.sh").read_text()
    py = sys.executable
    assert _rank0_checks(probe) == [
        f"check_help python3 {STANDINS}/examples/quantization/quantize.py", "check_help trtllm-build",
        "check_exists trtllm-llmapi-launch", f"check_help {py} -m harness"]
    assert "srun \\\n  --ntasks=16 \\\n  --mpi=pmix" in job.text and "--gpus-per-node" not in job.text  # CPU only
    assert f"bash {tmp_path}/smoke.probe.sh" in job.text
    for name in ("UCX_NET_DEVICES mlx5_0:1", "UCX_IB_GID_INDEX 3", "NCCL_IB_HCA mlx5_0", "NCCL_SOCKET_IFNAME lo"):
        assert f"expect_env {name}" in probe


def test_alone_it_checks_every_stage_the_config_can_render_with_the_release_paths(tmp_path: Path) -> None:
    render_job("smoke", _config(preset="a100-fp16"), tmp_path)
    checks = _rank0_checks((tmp_path / "smoke.probe.sh").read_text())
    assert f"check_help python3 {STANDINS}/examples/models/core/llama/convert_checkpoint.py" in checks
    assert "check_help trtllm-serve" in checks and "check_help trtllm-build" in checks
    assert f"check_help {sys.executable} -m compliance" in checks
    assert not any("quantize.py" in c for c in checks)  # the a100-fp16 preset converts, it does not quantize


def test_the_scripts_pass_bash_n_and_shellcheck(tmp_path: Path) -> None:
    job = render_job("smoke", _config(), tmp_path)
    for script in (job.script_path, tmp_path / "smoke.probe.sh"):
        assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
        if shutil.which("shellcheck") is None:
            pytest.skip("shellcheck is not installed")
        lint = subprocess.run(["shellcheck", "--severity=style", str(script)], capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout


def _probe(tmp_path: Path, env: dict[str, str], config: RunConfig | None = None,
           path: str | None = None) -> subprocess.CompletedProcess[str]:
    render_job("smoke", config or _config(), tmp_path, extra={"stages": "build,run"})
    base = {"PATH": path or f"{STANDINS / 'bin'}:{os.environ['PATH']}", "PYTHONPATH": str(REPO), "SLURM_PROCID": "0",
            "SLURM_NTASKS": "16", "PMIX_RANK": "0", "UCX_NET_DEVICES": "mlx5_0:1", "UCX_IB_GID_INDEX": "3",
            "NCCL_IB_HCA": "mlx5_0", "NCCL_SOCKET_IFNAME": "lo", "HOME": str(tmp_path)}
    merged = {k: v for k, v in {**base, **env}.items() if v is not None}
    return subprocess.run(["bash", str(tmp_path / "smoke.probe.sh")], env=merged, capture_output=True, text=True,
                          timeout=120)


def test_the_probe_passes_when_everything_is_there(tmp_path: Path) -> None:
    done = _probe(tmp_path, {})
    assert done.returncode == 0, done.stderr
    assert "ok   rank 0/16" in done.stdout and "PMIx reaches this rank (PMIX_RANK=0)" in done.stdout
    assert "'trtllm-build --help' works" in done.stdout and "trtllm-llmapi-launch is on PATH" in done.stdout
    assert "UCX device mlx5_0:1 (UCX_NET_DEVICES) is listed by ucx_info -d" in done.stdout
    assert "UCX_IB_GID_INDEX=3 as configured" in done.stdout and "all checks passed" in done.stdout


def test_a_missing_entry_point_fails_the_probe_with_exit_3_and_one_line(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (STANDINS / "bin").iterdir():
        if tool.name != "trtllm-build":
            (bin_dir / tool.name).symlink_to(tool)
    done = _probe(tmp_path, {}, path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 3
    fails = [line for line in done.stderr.splitlines() if " FAIL " in line]
    assert len(fails) == 1 and "'trtllm-build --help' exited 127" in fails[0], done.stderr
    assert "1 check(s) failed" in done.stderr


@pytest.mark.parametrize(("env", "line"), [
    ({"PMIX_RANK": None}, "PMIX_RANK is not set: srun --mpi=pmix did not reach this rank inside the container; "
                          "enable enroot's PMIx hook"),
    ({"PMIX_RANK": "3"}, "PMIX_RANK=3 but SLURM_PROCID=0"),
    ({"UCX_IB_GID_INDEX": None}, "UCX_IB_GID_INDEX is not set inside the container (slurm.env sets it to '3')"),
    ({"NCCL_IB_HCA": "mlx5_1"}, "NCCL_IB_HCA is 'mlx5_1' inside the container, slurm.env sets 'mlx5_0'"),
    ({"STANDIN_UCX_DEVICES": "mlx5_2:1 lo"}, "UCX_NET_DEVICES names mlx5_0:1, which ucx_info -d does not list"),
])
def test_each_pmix_ucx_or_fabric_problem_is_one_failing_line(env: dict[str, str], line: str, tmp_path: Path) -> None:
    done = _probe(tmp_path, env)
    assert done.returncode == 3
    fails = [f for f in done.stderr.splitlines() if " FAIL " in f]
    assert len(fails) == 1 and line in fails[0], done.stderr


def test_a_missing_network_interface_and_missing_ucx_are_named(tmp_path: Path) -> None:
    config = _config("slurm.env.NCCL_SOCKET_IFNAME==nosuchif0")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in (STANDINS / "bin").iterdir():
        if tool.name != "ucx_info":
            (bin_dir / tool.name).symlink_to(tool)
    done = _probe(tmp_path, {"NCCL_SOCKET_IFNAME": "=nosuchif0"}, config, path=f"{bin_dir}:/usr/bin:/bin")
    assert done.returncode == 3
    assert "NCCL_SOCKET_IFNAME names nosuchif0, but this node has no such interface" in done.stderr
    assert "ucx_info is not on PATH: UCX is missing from the image" in done.stderr


def test_pipelines_in_a_container_start_with_the_smoke_stage_by_default() -> None:
    config = _config()
    assert with_smoke(["run", "accuracy"], config) == ["smoke", "run", "accuracy"]
    assert with_smoke(["run"], config, smoke=False) == ["run"]
    assert with_smoke(["preflight"], config) == ["preflight"]  # no model stage to guard
    bare = build_config({"backend": {"kind": "fake"}})
    assert with_smoke(["run"], bare) == ["run"] and with_smoke(["run"], bare, smoke=True) == ["smoke", "run"]
    with pytest.raises(ConfigError, match="smoke must come first"):
        with_smoke(["run", "smoke"], config)
