"""`harness sweep` against a REAL vLLM server (converted SmolLM2) at three concurrency levels, then `harness report`
draws the Pareto figure from it: one point per level, and sweep.json agrees with the level directories."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.checkpoint import converted_checkpoint
from harness.report.build import build_report
from harness.report.sweep import load_sweep, read_level
from tests.integration.runs import REPO
from tests.integration.vllm_server import VLLM_PYTHON, VllmServer

pytestmark = [pytest.mark.vllm, pytest.mark.model,
              pytest.mark.skipif(not VLLM_PYTHON.exists(), reason=f"{VLLM_PYTHON} is absent: run "
                                                                  "./scripts/install-vllm.sh")]
LEVELS = [1, 2, 4]
SAMPLES = 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    started = VllmServer(converted_checkpoint(), "smollm2", tmp_path_factory.mktemp("vllm-sweep") / "server.log")
    try:
        yield started
    finally:
        started.stop()


def _harness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def sweep_dir(server: VllmServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    out = root / "sweep"
    done = _harness("sweep", "--urls", server.url, "--concurrency", ",".join(map(str, LEVELS)), "--output", str(out),
                    "--set", f"dataset.max_samples={SAMPLES}", "--set", "generation.max_new_tokens=16",
                    "--set", "backend.ready_timeout_s=300", "--no-progress", cwd=root)
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{server.tail()}"
    assert "| concurrency |" in done.stdout and f"harness report {out}" in done.stdout
    return out


def test_every_level_completes_every_sample_with_first_tokens(sweep_dir: Path) -> None:
    sweep = load_sweep(sweep_dir)
    assert [level.concurrency for level in sweep.levels] == LEVELS
    for level in sweep.levels:
        assert (level.status, level.completed, level.errors, level.in_flight) == ("completed", SAMPLES, 0,
                                                                                  level.concurrency)
        facts = json.loads((sweep_dir / level.directory / "level.json").read_text())
        [load] = facts["load"]
        assert (load["requests"], load["errors"], load["version"]) == (SAMPLES, 0, "0.32.0")
        samples = [json.loads(line) for line in (sweep_dir / level.directory / "samples.jsonl").read_text()
                   .splitlines()]
        assert sorted(s["qsl_idx"] for s in samples) == list(range(SAMPLES))
        assert all(s["issued_ns"] < s["first_token_ns"] <= s["completed_ns"] and 2 <= s["n_tokens"] <= 16
                   for s in samples), samples


def test_sweep_json_agrees_with_the_level_directories(sweep_dir: Path) -> None:
    for level in load_sweep(sweep_dir).levels:
        again = read_level(sweep_dir / level.directory)
        assert again.to_json() == level.to_json()
        assert level.tokens_per_s_per_user == pytest.approx(1000 / (level.tpot_ms["p90"] or 0))
        assert level.system_tokens_per_s == pytest.approx(level.output_tokens / level.duration_s)


def test_report_draws_the_pareto_figure_with_one_point_per_level(sweep_dir: Path, tmp_path: Path) -> None:
    report = build_report([sweep_dir])
    figure = report.sweep_figures["sweep"]["pareto"]
    pareto = figure.axes[0]
    sweep = load_sweep(sweep_dir)
    points = [tuple(p) for p in pareto.collections[0].get_offsets()]
    assert points == pytest.approx([(lv.tokens_per_s_per_user, lv.system_tokens_per_s) for lv in sweep.levels])
    assert sorted(t.get_text() for t in pareto.texts) == sorted(f"c={c}" for c in LEVELS)
    assert len(pareto.lines[0].get_xdata()) == len(sweep.front()) >= 1
    done = _harness("report", str(sweep_dir), "--output", str(tmp_path / "report"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "report" / "sweep" / "pareto.png").stat().st_size > 10_000
    assert "## Concurrency sweep: sweep" in (tmp_path / "report" / "runs.md").read_text()
