"""`harness slurm` commands without a cluster: render, --print, stages, bad input exit codes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.cli import app
from harness.console import run_cli


def test_render_writes_the_script_and_config_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["slurm", "render", "accuracy", "--job-dir", str(tmp_path), "--set", "slurm.nodes=2"])
    assert code == 0
    script = tmp_path / "accuracy.sbatch"
    assert capsys.readouterr().out.splitlines() == [f"wrote {script}", f"wrote {tmp_path / 'accuracy.config.yaml'}",
                                                    f"submit with: sbatch {script}"]
    assert "#SBATCH --nodes=2" in script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_print_emits_the_unwrapped_script_and_writes_nothing(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "site.yaml"
    config.write_text("slurm:\n  partition: gpu\n  env: {NCCL_DEBUG: INFO}\n")
    code = run_cli(app, ["slurm", "render", "run", "--config", str(config), "--job-dir", str(tmp_path / "j"),
                         "--print"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("#!/bin/bash\n")
    assert f"written from {config.resolve()}" in out
    assert "#SBATCH --partition=gpu\n" in out and "export NCCL_DEBUG='INFO'\n" in out
    assert not (tmp_path / "j").exists()
    assert subprocess.run(["bash", "-n"], input=out, text=True).returncode == 0


def test_stages_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(app, ["slurm", "stages"]) == 0
    assert capsys.readouterr().out.split()[:4] == ["preflight", "run", "accuracy", "compliance"]


@pytest.mark.parametrize(("args", "message"), [
    (["render", "finetune"], "unknown Slurm stage 'finetune'"),
    (["render", "run", "--set", "slurm.time_limit=forever"], "slurm.time_limit"),
    (["status", "12;rm"], "is not a Slurm job id"),
])
def test_bad_input_exits_2_with_one_error_line(args: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(app, ["slurm", *args, *(["--job-dir", str(tmp_path)] if args[0] == "render" else [])]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err
