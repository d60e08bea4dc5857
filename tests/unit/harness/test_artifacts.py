"""Run directories: never overwritten unless asked; secrets never recorded; atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.artifacts import create_run_dir, recorded_environment, write_text_atomic
from harness.errors import ConfigError


def test_existing_run_directory_is_refused_unless_overwrite(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "mlperf_log_detail.txt").write_text("precious")
    with pytest.raises(ConfigError, match="already exists and is not empty"):
        create_run_dir(run, overwrite=False)
    assert (run / "mlperf_log_detail.txt").read_text() == "precious"
    create_run_dir(run, overwrite=True)
    assert list(run.iterdir()) == []


def test_environment_allowlist_never_records_secrets() -> None:
    env = {"NCCL_IB_GID_INDEX": "3", "SLURM_JOB_ID": "7", "HF_TOKEN": "hf_secret", "NCCL_AUTH_KEY": "x",
           "AWS_SECRET_ACCESS_KEY": "y", "HOME": "/root", "CUDA_VISIBLE_DEVICES": "0,1", "HARNESS_API_TOKEN": "z"}
    # Secret-looking allowlisted variables keep their name (so the record shows they were set), never their value.
    assert recorded_environment(env) == {"CUDA_VISIBLE_DEVICES": "0,1", "HARNESS_API_TOKEN": "<redacted>",
                                         "NCCL_AUTH_KEY": "<redacted>", "NCCL_IB_GID_INDEX": "3", "SLURM_JOB_ID": "7"}


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "file.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]
