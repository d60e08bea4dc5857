"""Helpers for integration tests: run the real `harness` CLI in a subprocess and read its run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.logs import parse_detail_log

REPO = Path(__file__).resolve().parents[2]


def harness(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """`python -m harness ARGS` with the repository on PYTHONPATH; output captured as text."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([python, "-m", "harness", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)


def round_python(round_name: str) -> str:
    """The python of the environment holding an older round's LoadGen (scripts/install-loadgen-round.sh)."""
    python = REPO / f".venv-loadgen-{round_name}" / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"no LoadGen for round {round_name}: run ./scripts/install-loadgen-round.sh {round_name} "
                    "(scripts/test.sh does)")
    return str(python)


def manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest.json."""
    return json.loads((run_dir / "manifest.json").read_text())


def detail(run_dir: Path) -> dict[str, Any]:
    """First value of every key in mlperf_log_detail.txt, plus the list of error messages.

    Parsed with harness.logs, which handles LoadGen's string values that contain raw newlines.
    """
    log = parse_detail_log(run_dir / "mlperf_log_detail.txt")
    values: dict[str, Any] = {}
    for message in log.messages:
        values.setdefault(message.key, message.value)
    values["__errors__"] = [{"key": m.key, "value": m.value} for m in log.errors]
    return values


def accuracy_tokens(run_dir: Path) -> dict[int, str]:
    """qsl_idx -> hex response data from mlperf_log_accuracy.json (first occurrence wins)."""
    found: dict[int, str] = {}
    for entry in json.loads((run_dir / "mlperf_log_accuracy.json").read_text()):
        found.setdefault(entry["qsl_idx"], entry["data"])
    return found
