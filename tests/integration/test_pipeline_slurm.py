"""`harness pipeline` with executor: slurm on a real single-host Slurm: an afterok chain of `--only` jobs.

Real sbatch/srun, real `harness run` stages and LoadGen; the fake backend stands in for a model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_slurm_local import DAEMONS, _wait, slurm_cluster

REPO = Path(__file__).resolve().parents[2]
IDS = ["llama2-70b-99.9/Offline/accuracy", "llama2-70b-99.9/Offline/performance"]
pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(any(shutil.which(d) is None for d in DAEMONS),
                                 reason="Slurm/munge are not installed (scripts/install-system.sh)")]
__all__ = ["slurm_cluster"]  # the session fixture, shared with test_slurm_local.py


def test_slurm_mode_submits_one_job_per_stage_chained_afterok(slurm_cluster: Path, tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(json.dumps({
        "set": ["backend.kind=fake", "backend.output_tokens=8", "dataset.max_samples=4",
                f"slurm.python={sys.executable}", f"slurm.workdir={REPO}"],
        "scenarios": ["Offline"], "stages": ["accuracy", "performance"], "output_dir": "out", "executor": "slurm",
    }))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    submitted = subprocess.run([sys.executable, "-m", "harness", "pipeline", "--config", str(config)], env=env,
                               text=True, capture_output=True, timeout=300, cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    lines = [line for line in submitted.stderr.splitlines() if line.startswith("submitted ")]
    assert [line.split()[1] for line in lines] == IDS
    first, second = (line.split()[5] for line in lines)
    assert lines[1].endswith(f"(afterok:{first})")
    assert _wait(second).state == "COMPLETED"
    state = json.loads((tmp_path / "out" / "pipeline-state.json").read_text())["stages"]
    assert [state[i]["status"] for i in IDS] == ["completed", "completed"]
    for stage_id in IDS:
        manifest = json.loads((tmp_path / "out" / "runs" / stage_id / "manifest.json").read_text())
        assert manifest["environment"]["SLURM_JOB_ID"] in (first, second)
