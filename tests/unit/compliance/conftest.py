"""Fixtures for compliance tests: writing hand-built accuracy logs, running the official TEST06 script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def write_log(tmp_path: Path) -> Callable[[Any, str], Path]:
    """Write a JSON value as <tmp>/<name>/mlperf_log_accuracy.json and return the directory."""

    def write(value: Any, name: str = "run") -> Path:
        directory = tmp_path / name
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "mlperf_log_accuracy.json").write_text(json.dumps(value))
        return directory

    return write


MIRROR = "/work/.mirror/mlcommons+inference/repo"
OFFICIAL = "v4.0:compliance/nvidia/TEST06/run_verification.py"


@pytest.fixture
def official(tmp_path: Path) -> Callable[..., list[str] | None]:
    """Run inference@v4.0 run_verification.py (from the git mirror) on a log directory.

    Returns the lines of the verify_accuracy.txt it wrote, or None when it wrote none (it crashed).
    Skips when the mirror (MLPERF_INFERENCE_GIT, default the local mirror) is absent, as on CI.
    """
    repo = os.environ.get("MLPERF_INFERENCE_GIT", MIRROR)
    if not Path(repo).exists():
        pytest.skip(f"no MLCommons inference git mirror at {repo} (set MLPERF_INFERENCE_GIT)")
    shown = subprocess.run(["git", "-C", repo, "show", OFFICIAL], capture_output=True, text=True, check=True)
    script = tmp_path / "official" / "run_verification.py"
    script.parent.mkdir()
    script.write_text(shown.stdout)
    runs = iter(range(1_000_000))

    def run(log_dir: Path, scenario: str, dtype: str = "int32") -> list[str] | None:
        out = tmp_path / "official" / f"out{next(runs)}"
        subprocess.run([sys.executable, str(script), "-c", str(log_dir), "-o", str(out), "-s", scenario,
                        "-d", dtype], capture_output=True, text=True, timeout=120)
        written = out / "TEST06" / "verify_accuracy.txt"
        return written.read_text().splitlines() if written.is_file() else None

    return run
