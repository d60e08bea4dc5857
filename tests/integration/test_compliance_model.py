"""`compliance run TEST06` on the embedded default (SmolLM2-135M on the CPU) in Offline and Server.

Real everything: the console script in a subprocess, the real model, real LoadGen with the audit.config.
Kept short (4 distinct prompts, 4 new tokens), yet TEST06 itself issues about 100 samples, which takes
minutes on a shared 2-core CPU: hence `slow` as well as `model` (run with `-m model`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.results import read_test06
from tests.integration.test_compliance_run import MIRROR, official_lines

pytestmark = [pytest.mark.model, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--set", "dataset.max_samples=4", "--set", "generation.max_new_tokens=4", "--set", "loadgen.target_qps=20"]


@pytest.fixture(scope="module")
def smollm2_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """One TEST06 run per scenario through `python -m compliance run TEST06`."""
    root = tmp_path_factory.mktemp("smollm2-test06")
    done = {}
    for scenario in ("Offline", "Server"):
        run_dir = root / scenario.lower()
        argv = [sys.executable, "-m", "compliance", "run", "TEST06", "--scenario", scenario, *SHORT,
                "--output-dir", str(run_dir), "--no-progress"]
        done[scenario] = (run_dir, subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                                                  env={**os.environ, "PYTHONPATH": str(ROOT)}))
    return done


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_embedded_default_passes_test06(smollm2_runs: dict, scenario: str) -> None:
    run_dir, process = smollm2_runs[scenario]
    assert process.returncode == 0, process.stderr[-2000:]
    first = "Skipped" if scenario == "Offline" else "True"
    expected = [f"First token check pass: {first}", "EOS check pass: True", "Sample length check pass: True",
                "TEST06 verification complete"]
    assert process.stdout.splitlines()[:4] == expected
    stored = read_test06(run_dir)
    assert stored.passed and list(stored.lines) == expected
    assert stored.accuracy_log.read_bytes() == (run_dir / "mlperf_log_accuracy.json").read_bytes()


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_official_script_agrees(smollm2_runs: dict, scenario: str, tmp_path: Path) -> None:
    if not Path(MIRROR).exists():
        pytest.skip(f"no MLCommons inference git mirror at {MIRROR}")
    run_dir, _ = smollm2_runs[scenario]
    assert official_lines(run_dir, scenario, tmp_path) == list(read_test06(run_dir).lines)
