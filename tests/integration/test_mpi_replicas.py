"""Data-parallel replicas over real Open MPI ranks: same tokens as one process; a lost worker fails the run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.runs import REPO, accuracy_tokens, harness, manifest

pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI is not installed")]
MPI = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "3"]


def _mpi_harness(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*MPI, sys.executable, "-m", "harness", *args], env=env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.mark.model
def test_three_ranks_give_the_same_token_ids_per_sample_as_one_process(tmp_path: Path) -> None:
    common = ["run", "--mode", "accuracy", "--no-progress", "--set", "dataset.max_samples=6",
              "--set", "generation.max_new_tokens=10", "--set", "backend.max_batch_size=2"]
    single = harness(*common, "--output-dir", str(tmp_path / "single"))
    assert single.returncode == 0, single.stderr
    distributed = _mpi_harness(*common, "--output-dir", str(tmp_path / "mpi"))
    assert distributed.returncode == 0, distributed.stderr + distributed.stdout
    assert accuracy_tokens(tmp_path / "mpi") == accuracy_tokens(tmp_path / "single")
    replicas = manifest(tmp_path / "mpi")["details"]["replicas"]
    assert len(replicas["names"]) == 3 and sum(replicas["completed"]) == 6
    assert manifest(tmp_path / "mpi")["details"]["launch"]["world_size"] == 3


def test_worker_ranks_warm_up_before_loadgen_starts(tmp_path: Path) -> None:
    """Each worker rank's backend warm-up runs (and is reported) before the timed test, like rank 0's."""
    run = _mpi_harness("run", "--no-progress", "--set", "backend.kind=fake", "--set", "dataset.max_samples=8",
                       "--output-dir", str(tmp_path / "run"), timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    note = manifest(tmp_path / "run")["details"]["warm_up"]
    assert [part.split(": ", 1)[0].split(" ")[:2] for part in note.split("; ")] == [
        ["rank", "0"], ["rank", "1"], ["rank", "2"]], note
    assert all(part.endswith("answer matrices of 1024 rows ready") for part in note.split("; ")), note


def test_a_killed_worker_fails_the_run_quickly_and_marks_it_failed(tmp_path: Path) -> None:
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([*MPI, sys.executable, "-m", "harness", "run", "--no-progress",
                                "--set", "backend.kind=fake", "--set", "backend.delay_ms=60000",
                                "--output-dir", str(run)], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 180
    while not (run / "mlperf_log_detail.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    worker = _rank_pid(2)
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    _, err = process.communicate(timeout=120)
    assert time.monotonic() - killed_at < 30
    data = manifest(run)
    assert data["status"] == "failed" and data["submittable"] is False and data["error"]
    # mpirun SIGTERMs rank 0 right after the worker died, before any heartbeat is missed: the record still
    # names the rank, its pid and host (rank 0 checked the worker's pid on its own machine).
    named = f"worker rank 2 (pid {worker} on {socket.gethostname()}) is gone"
    assert named in data["error"], data["error"]
    assert "another rank exited" not in data["error"]
    assert "worker rank 1" not in data["error"], data["error"]  # the live worker is not blamed
    assert named in err, err


def _rank_pid(rank: int) -> int:
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"OMPI_COMM_WORLD_RANK={rank}".encode() in environ and b"PYTHONPATH=" + str(REPO).encode() in environ:
            return pid
    raise AssertionError(f"no process of MPI rank {rank} found")
