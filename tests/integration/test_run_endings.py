"""Every way a `harness run` ends, as a user sees it: the exit code, the one error line, the manifest's status and
error, and what is left in the run directory, all decided by harness.run_end (issue 23, item 2).

Real processes (`python -m harness run`, fake or TensorRT-LLM-fake backend, real LoadGen), real signals sent at a
phase the test waits for: before LoadGen (the backend still loading), during LoadGen, after LoadGen (the backend
stopping), Ctrl-C once and twice, SIGTERM followed by Ctrl-C, an engine that dies mid-run, a run that completes.
(A lost worker rank: tests/integration/test_mpi_replicas.py; a hanging engine stop:
tests/unit/harness/backends/trtllm/test_adapter.py; OS errors: tests/integration/test_bad_inputs.py.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fake_support import FAKES, word_level_tokenizer

BOUND_S = 30.0  # from the signal to the process's exit


def _start(out: Path, *sets: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "harness", "run", "--output-dir", str(out), "--no-progress"]
    for item in sets:
        args += ["--set", item]
    return subprocess.Popen(args, cwd=out.parent, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 180
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            _, err = proc.communicate()
            raise AssertionError(f"the run ended (rc {proc.returncode}) or timed out before {what}: {err[-2000:]}")
        time.sleep(0.05)


def _manifest(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "manifest.json").read_text())
    return data


def _loadgen_running(out: Path) -> Callable[[], bool]:
    """LoadGen created its logs (all of them when it starts) and has not written its summary yet."""
    detail, summary = out / "mlperf_log_detail.txt", out / "mlperf_log_summary.txt"
    return lambda: detail.is_file() and summary.is_file() and summary.stat().st_size == 0


def _loading(out: Path) -> Callable[[], bool]:
    """The run directory exists (config written), LoadGen has not started."""
    return lambda: (out / "manifest.json").is_file() and not (out / "mlperf_log_detail.txt").exists()


def _after_loadgen(out: Path) -> Callable[[], bool]:
    summary = out / "mlperf_log_summary.txt"
    return lambda: summary.is_file() and summary.stat().st_size > 0


def _ended(proc: subprocess.Popen[str], sent: float) -> tuple[int, list[str], str]:
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - sent < BOUND_S, f"took {time.monotonic() - sent:.1f} s after the signal"
    assert "Traceback" not in err, err[-3000:]
    return proc.returncode, [line for line in err.splitlines() if line.startswith("error:")], err


# An accuracy run over the smoke set, 1 s a batch of 2: LoadGen runs for about 20 s.
SLOW = ("backend.kind=fake", "backend.delay_ms=1000", "backend.max_batch_size=2", "mode=accuracy")


@pytest.mark.parametrize(("delay", "phase", "logs_complete"), [
    ("backend.start_delay_s=30", "before LoadGen: the backend still loading", False),
    ("backend.stop_delay_s=30", "after LoadGen: the backend stopping", True),
], ids=["before-loadgen", "after-loadgen"])
def test_sigterm_fails_the_run_and_keeps_its_directory(tmp_path: Path, delay: str, phase: str,
                                                       logs_complete: bool) -> None:
    out = tmp_path / "run"
    proc = _start(out, "backend.kind=fake", delay, "dataset.max_samples=4")
    _wait_for(proc, _after_loadgen(out) if logs_complete else _loading(out), phase)
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, errors, err = _ended(proc, sent)
    assert code == 4, err
    assert len(errors) == 1 and "terminated by signal 15 (SIGTERM" in errors[0], err
    manifest = _manifest(out)
    assert manifest["status"] == "failed" and "terminated by signal 15" in str(manifest["error"])
    if logs_complete:  # LoadGen's own logs are complete
        assert (out / "mlperf_log_summary.txt").stat().st_size > 0
    else:
        assert not (out / "mlperf_log_detail.txt").exists()


def test_ctrl_c_twice_leaves_at_once_and_marks_the_run_aborted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, *SLOW, "backend.stop_delay_s=60")
    _wait_for(proc, _loadgen_running(out), "LoadGen started")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, _, err = _ended(proc, sent)
    assert code == 130, err
    manifest = _manifest(out)
    assert manifest["status"] == "aborted", manifest
    assert str(manifest["error"]).startswith("interrupt")


def test_sigterm_then_ctrl_c_keeps_the_signals_decision(tmp_path: Path) -> None:
    """The first decision stands: SIGTERM failed the run (exit 4); a Ctrl-C while it stops does not turn it into
    an aborted run with 130."""
    out = tmp_path / "run"
    proc = _start(out, "backend.kind=fake", "backend.start_delay_s=30", "dataset.max_samples=4")
    _wait_for(proc, _loading(out), "the backend started loading")
    time.sleep(0.5)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    code, _, err = _ended(proc, sent)
    assert code == 4, err
    manifest = _manifest(out)
    assert manifest["status"] == "failed" and "terminated by signal 15" in str(manifest["error"])


def test_ctrl_c_once_stops_loadgen_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, *SLOW)
    _wait_for(proc, _loadgen_running(out), "LoadGen started")
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, errors, err = _ended(proc, sent)
    assert code == 130, err
    manifest = _manifest(out)
    assert manifest["status"] == "aborted" and (out / "mlperf_log_summary.txt").stat().st_size > 0
    assert errors == [] or all("interrupted" in line for line in errors), errors


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return word_level_tokenizer(tmp_path_factory.mktemp("tokenizer"), words=500)


def test_an_engine_that_dies_mid_run_fails_it_with_the_cause(tmp_path: Path, tokenizer_dir: str) -> None:
    """TensorRT-LLM (fake) whose KV cache holds no request: its executor loop ends; the run fails (4) naming the
    cause and the fix once, the manifest records it, and LoadGen's logs are closed."""
    out = tmp_path / "run"
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{FAKES}", "FAKE_TRTLLM_KV_CACHE_TOKENS": "4"}
    proc = _start(out, "backend.kind=trtllm", f"model.path={tmp_path}", f"model.tokenizer={tokenizer_dir}",
                  "dataset.chat_template=false", "dataset.max_samples=4", env=env)
    code, errors, err = _ended(proc, time.monotonic())
    assert code == 4, err
    assert len(errors) == 1 and "request(s) failed in the backend" in errors[0], err
    assert "fail to schedule any pending request" in errors[0] and "kv_cache_free_gpu_memory_fraction" in errors[0]
    manifest = _manifest(out)
    assert manifest["status"] == "failed" and "fail to schedule" in str(manifest["error"])
    assert (out / "mlperf_log_summary.txt").is_file()


def test_a_completed_run_exits_0_and_says_nothing_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _start(out, "backend.kind=fake", "dataset.max_samples=4", "loadgen.target_qps=100")
    code, errors, err = _ended(proc, time.monotonic())
    manifest = _manifest(out)
    assert manifest["status"] == "completed" and manifest["error"] is None
    assert code == (0 if manifest["result"]["result_validity"] == "VALID" else 1) and errors == [], err
