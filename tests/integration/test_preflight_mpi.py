"""harness preflight under real Open MPI ranks: per-rank inventory, all-pairs reachability/latency/bandwidth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI is not installed")]


def _preflight(ranks: int, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), sys.executable,
                           "-m", "harness", "preflight", "--no-tools", "--json", str(tmp_path / "p.json"), *extra],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_two_ranks_measure_their_pair_and_report_once(tmp_path: Path) -> None:
    done = _preflight(2, tmp_path, "--set", "preflight.mpi_message_bytes=65536")
    assert done.returncode == 0, done.stderr + done.stdout
    data = json.loads((tmp_path / "p.json").read_text())
    assert data["world_size"] == 2
    assert sorted(h["rank"] for h in data["hosts"]) == [0, 1]
    (pair,) = data["mpi_pairs"]
    assert (pair["rank_a"], pair["rank_b"]) == (0, 1)
    assert pair["latency_us"] > 0 and pair["bandwidth_gbit_s"] > 0
    assert done.stdout.count("preflight (2 rank(s))") == 1


def test_an_unmeetable_latency_limit_fails_with_exit_3(tmp_path: Path) -> None:
    done = _preflight(2, tmp_path, "--set", "preflight.max_mpi_latency_us=0.0001",
                      "--set", "preflight.mpi_message_bytes=65536")
    assert done.returncode == 3
    assert "first: mpi 0(" in done.stderr
