"""The vLLM environment (.venv-vllm, ./scripts/install-vllm.sh) for the tests that run the harness inside it."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from tests.integration.vllm_server import VLLM_PYTHON

__all__ = ["REPO", "VLLM_PYTHON", "missing_reason", "run_in_vllm_env"]

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def missing_reason() -> str | None:
    """Why the harness cannot run in the vLLM environment here (None when it can)."""
    if not VLLM_PYTHON.exists():
        return f"{VLLM_PYTHON} is absent: run ./scripts/install-vllm.sh"
    probe = subprocess.run([str(VLLM_PYTHON), "-c", "import vllm, mlperf_loadgen, rouge_score, gguf"],
                           capture_output=True, text=True, timeout=300)
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"the vLLM environment cannot run the harness ({last}): run ./scripts/install-vllm.sh"
    return None


def run_in_vllm_env(module: str, *args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`.venv-vllm/bin/python -m MODULE ARGS` with this repository on PYTHONPATH (the harness is not installed
    there: the environment is shared by checkouts); output captured as text."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
    return subprocess.run([str(VLLM_PYTHON), "-m", module, *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)
