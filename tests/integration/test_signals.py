"""Ctrl-C exits 130 and SIGTERM exits 4, promptly, with LoadGen's logs closed and valid (fake and real model)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.artifacts import RunArtifacts
from harness.types import RunStatus
from tests.conftest import REPO

# LoadGen stops within seconds once the SUT answers everything; the backend gets STOP_GRACE_S (5 s) more.
BOUND_S = 15.0


def _start(tmp_path: Path, *sets: str) -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "run"
    args = [sys.executable, "-m", "harness", "run", "--mode", "accuracy", "--output-dir", str(out), "--no-progress"]
    for item in sets:
        args += ["--set", item]
    proc = subprocess.Popen(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, out


def _signal_during_loadgen(proc: subprocess.Popen[str], out: Path, signum: int, settle_s: float) -> float:
    deadline = time.monotonic() + 240
    while not (out / "mlperf_log_detail.txt").is_file() or (out / "mlperf_log_detail.txt").stat().st_size == 0:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    time.sleep(settle_s)
    sent = time.monotonic()
    proc.send_signal(signum)
    proc.wait(timeout=120)
    return time.monotonic() - sent


def _logs_valid(out: Path) -> None:
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert isinstance(entries, list) and entries
    assert (out / "mlperf_log_summary.txt").stat().st_size > 0


@pytest.mark.parametrize(("signum", "code", "status"), [(signal.SIGINT, 130, RunStatus.ABORTED),
                                                        (signal.SIGTERM, 4, RunStatus.FAILED)])
def test_signal_with_a_slow_fake_backend(tmp_path: Path, signum: int, code: int, status: RunStatus) -> None:
    proc, out = _start(tmp_path, "backend.kind=fake", "backend.delay_ms=400", "backend.max_batch_size=4")
    took = _signal_during_loadgen(proc, out, signum, settle_s=1.0)
    _, err = proc.communicate()
    assert proc.returncode == code, err
    assert took < BOUND_S and "Traceback" not in err
    assert RunArtifacts(out).read_manifest().status is status
    _logs_valid(out)


@pytest.mark.model
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 4)])
def test_signal_with_the_real_model_exits_cleanly(tmp_path: Path, signum: int, code: int) -> None:
    """Used to end in std::terminate (exit 134, ~60 s): the hf worker thread was still inside generate()."""
    proc, out = _start(tmp_path, "dataset.max_samples=16")
    took = _signal_during_loadgen(proc, out, signum, settle_s=2.0)
    _, err = proc.communicate()
    assert proc.returncode == code, err[-3000:]
    assert took < BOUND_S and "terminate called" not in err and "Traceback" not in err
    _logs_valid(out)
