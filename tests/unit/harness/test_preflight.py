"""harness preflight on one host: recorded sysfs trees, saved tool logs, thresholds, JSON, CLI exit codes."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from harness.cli import app
from harness.config import build_config
from harness.console import run_cli
from harness.preflight import PreflightInputs, run_preflight, under_mpi
from harness.types import CheckStatus

DATA = Path(__file__).resolve().parents[2] / "data"
ROCE = DATA / "sysfs" / "roce_before"
NCCL_LOG, PERF_LOG = DATA / "network" / "all_reduce_perf.txt", DATA / "network" / "ib_write_bw.txt"


@pytest.mark.parametrize(("env", "expected"), [
    ({}, False), ({"OMPI_COMM_WORLD_SIZE": "1"}, False), ({"OMPI_COMM_WORLD_SIZE": "3"}, True),
    ({"PMIX_RANK": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2"}, True),  # srun --mpi=pmix
    ({"SLURM_NTASKS": "3"}, False),  # the sbatch script itself, before srun
])
def test_mpi_is_detected_from_the_launcher_environment(env: dict[str, str], expected: bool) -> None:
    assert under_mpi(env) is expected


def test_single_host_report_judges_sysfs_and_saved_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    config = build_config({"preflight": {"min_nccl_busbw_gbyte_s": 50, "min_ib_write_bw_gbit_s": 95}})
    report = run_preflight(config, PreflightInputs(ROCE, NCCL_LOG, PERF_LOG, run_tools=False))
    assert report is not None
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["nccl-tests peak"] is CheckStatus.PASS
    assert statuses["ib_write_bw"] is CheckStatus.FAIL
    assert statuses["rdma " + report.data["hosts"][0]["host"] + " mlx5_0/1 GID"] is CheckStatus.PASS
    assert [c.name for c in report.failed] == ["ib_write_bw"]
    assert report.data["nccl_tests"]["peak_busbw_gbyte_s"] == 59.24
    assert report.to_json()["checks"][-1]["status"] == "FAIL"


def _fake_tool(folder: Path, name: str, output: Path) -> None:
    script = folder / name
    script.write_text(f"#!/bin/sh\ncat '{output}'\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_installed_tools_are_run_and_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stand-ins for ib_write_bw (needs an RDMA NIC) print the documented output format; no GPU means
    all_reduce_perf is not run even though it is installed."""
    _fake_tool(tmp_path, "ib_write_bw", DATA / "network" / "ib_write_bw_gbits.txt")
    _fake_tool(tmp_path, "all_reduce_perf", NCCL_LOG)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("OMPI_COMM_WORLD_SIZE", raising=False)
    report = run_preflight(build_config({}), PreflightInputs(ROCE))
    assert report is not None
    assert report.data["perftest"][0]["average_gbit_s"] == 92.64
    assert "nccl_tests" not in report.data


def test_cli_writes_json_and_exits_3_naming_the_first_failure(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "preflight.json"
    code = run_cli(app, ["preflight", "--sysfs-root", str(ROCE), "--no-tools", "--json", str(out),
                         "--nccl-tests-log", str(NCCL_LOG), "--set", "preflight.min_nccl_busbw_gbyte_s=100"])
    assert code == 3
    err = capsys.readouterr().err
    assert "error: 1 preflight check(s) failed; first: nccl-tests peak: bus bandwidth 59.24 GB/s" in err
    data = json.loads(out.read_text())
    assert (data["world_size"], data["nccl_tests"]["wrong"]) == (1, 0)


def test_cli_passes_on_a_host_without_rdma_when_rdma_is_optional(tmp_path: Path) -> None:
    code = run_cli(app, ["preflight", "--sysfs-root", str(DATA / "sysfs" / "ethernet_only"), "--no-tools",
                         "--json", str(tmp_path / "p.json")])
    assert code == 0
    code = run_cli(app, ["preflight", "--sysfs-root", str(DATA / "sysfs" / "ethernet_only"), "--no-tools",
                         "--json", str(tmp_path / "p.json"), "--set", "preflight.require_rdma=true"])
    assert code == 3


def test_a_missing_log_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["preflight", "--no-tools", "--json", str(tmp_path / "p.json"),
                         "--perftest-log", str(tmp_path / "nope.txt")])
    assert code == 2
    assert "cannot read" in capsys.readouterr().err
