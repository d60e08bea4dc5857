"""A pipeline killed in its accuracy stage resumes from the per-sample output cache.

Real `harness pipeline` and `harness run` processes, real LoadGen, real ROUGE scoring; the fake backend
(with a per-request delay so the kill lands mid-run) stands in for a model.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAGE = "llama2-70b-99.9/Offline/accuracy"
SAMPLES = 6


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _config(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({
        "set": ["backend.kind=fake", "backend.behaviour=echo", "backend.delay_ms=1500",
                f"dataset.max_samples={SAMPLES}"],
        "scenarios": ["Offline"], "stages": ["accuracy"], "output_dir": name,
    }))
    return path


def _pipeline(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", "pipeline", "--config", str(config)], env=_env(),
                          text=True, capture_output=True, timeout=900, cwd=config.parent)


def _accuracy_log(run_dir: Path) -> dict[int, str]:
    return {e["qsl_idx"]: e["data"] for e in json.loads((run_dir / "mlperf_log_accuracy.json").read_text())}


def _cache_lines(cache_dir: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in cache_dir.glob("*.jsonl"))


def _kill_when_cached(config: Path, cache_dir: Path, at_least: int) -> int:
    """Start the pipeline, SIGKILL it (the pipeline process only) once some samples are cached."""
    process = subprocess.Popen([sys.executable, "-m", "harness", "pipeline", "--config", str(config)],
                               env=_env(), cwd=config.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while _cache_lines(cache_dir) < at_least:
        assert process.poll() is None, "the pipeline ended before it was killed"
        assert time.monotonic() < deadline
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    previous = -1
    while previous != _cache_lines(cache_dir):  # the stage process dies with its parent; let it settle
        previous = _cache_lines(cache_dir)
        time.sleep(1.0)
    return previous


def test_an_accuracy_stage_killed_mid_run_resumes_to_the_same_accuracy_results(tmp_path: Path) -> None:
    whole = _pipeline(_config(tmp_path, "whole"))
    assert whole.returncode == 0, whole.stderr

    config = _config(tmp_path, "killed")
    cached = _kill_when_cached(config, tmp_path / "killed" / "cache" / STAGE, at_least=2)
    assert 2 <= cached < SAMPLES
    state = json.loads((tmp_path / "killed" / "pipeline-state.json").read_text())["stages"][STAGE]
    assert state["status"] == "running"

    resumed = _pipeline(config)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{STAGE}: running (last attempt running)" in resumed.stderr
    run_dir, reference = tmp_path / "killed" / "runs" / STAGE, tmp_path / "whole" / "runs" / STAGE
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["details"]["output_cache"]["served_from_cache"] == cached
    assert manifest["details"]["output_cache"]["generated"] == SAMPLES - cached
    assert _accuracy_log(run_dir) == _accuracy_log(reference) and len(_accuracy_log(run_dir)) == SAMPLES
    assert (run_dir / "accuracy.txt").read_text() == (reference / "accuracy.txt").read_text()

    noop = _pipeline(config)
    assert noop.returncode == 0 and f"{STAGE}: skipped (up to date)" in noop.stderr
