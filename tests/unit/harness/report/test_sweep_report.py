"""`harness report` on sweeps: the Pareto figure (read from the Figure object), the sweep table in runs.md and the
HTML page, sweep directories and level directories given one by one. The sweep comes from a real `run_sweep`
against the fake backend (which stands in for a server), so level.json and samples.jsonl are the real formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import load_config
from harness.report.build import build_report, write_report
from harness.report.sweep import LevelMetrics, Sweep, load_sweep
from harness.sweep.run import run_sweep

FAKE = ["backend.kind=fake", "backend.output_tokens=6", "backend.delay_ms=2", "backend.first_token_delay_ms=1",
        "dataset.max_samples=6"]


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweeps") / "fake-sweep"
    run_sweep(load_config(None, FAKE), [1, 2, 3], out, progress=False)
    return out


def _level(concurrency: int, per_user: float, tps: float, ttft_p90: float) -> LevelMetrics:
    return LevelMetrics(concurrency, concurrency, "completed", 10, 0, 100, 1.0, tps, 10.0,
                        {"p50": ttft_p90 / 2, "p90": ttft_p90, "p99": ttft_p90 * 2},
                        {"p50": 1.0, "p90": 1000 / per_user, "p99": 2000 / per_user}, per_user,
                        f"concurrency-{concurrency}")


@pytest.fixture
def drawn(tmp_path: Path) -> Path:
    """A sweep.json with a known front: c=4 is dominated by c=2 (lower on both axes), c=8 fails."""
    levels = [_level(1, 100.0, 100.0, 50.0), _level(2, 80.0, 160.0, 70.0), _level(4, 70.0, 150.0, 90.0),
              _level(16, 20.0, 400.0, 400.0)]
    failed = LevelMetrics(8, 8, "failed", 0, 3, 0, 0.0, None, None, {}, {}, None, "concurrency-8", "boom")
    path = tmp_path / "drawn"
    path.mkdir()
    sweep = Sweep(path, "drawn", ["http://a:8000"], "2026-01-01T00:00:00+00:00", [], [*levels, failed])
    (path / "sweep.json").write_text(json.dumps(sweep.to_json()))
    return path


def test_pareto_figure_marks_the_front_and_labels_every_level(drawn: Path) -> None:
    report = build_report([drawn])
    assert report.runs == [] and [s.name for s in report.sweeps] == ["drawn"]
    pareto, ttft = report.sweep_figures["drawn"]["pareto"].axes
    assert pareto.get_title() == "Throughput vs interactivity: drawn"
    assert (pareto.get_xlabel(), pareto.get_ylabel()) == ("tokens/s per user (1000 / TPOT p90 ms)",
                                                          "system output tokens/s")
    points = [tuple(p) for p in pareto.collections[0].get_offsets()]
    assert points == [(100.0, 100.0), (80.0, 160.0), (70.0, 150.0), (20.0, 400.0)]  # the failed level is left out
    front = pareto.lines[0]
    assert list(front.get_xdata()) == [20.0, 80.0, 100.0] and list(front.get_ydata()) == [400.0, 160.0, 100.0]
    assert front.get_label() == "Pareto front (3 of 4)"
    assert [t.get_text() for t in pareto.texts] == ["c=1", "c=2", "c=4", "c=16"]
    assert [tuple(t.xy) for t in pareto.texts] == points
    assert ttft.get_title() == "TTFT p90 by concurrency"
    assert list(ttft.lines[0].get_xdata()) == [1, 2, 4, 16] and list(ttft.lines[0].get_ydata()) == [50, 70, 90, 400]
    assert ttft.get_xscale() == "log"


def test_the_sweep_table_lists_every_level_and_marks_the_front(drawn: Path, tmp_path: Path) -> None:
    write_report([drawn], tmp_path / "report")
    text = (tmp_path / "report" / "runs.md").read_text()
    assert "## Concurrency sweep: drawn" in text and "against http://a:8000" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [row.split(" | ")[0][2:] for row in rows] == ["1", "2", "4", "8", "16"]
    assert [row.rstrip(" |").rsplit(" | ", 1)[1] for row in rows] == ["yes", "yes", "-", "-", "yes"]
    assert "| 8 | 8 | failed | 0 | 3 | - | - |" in text
    assert "| 2 | 2 | completed | 10 | 0 | 160.0 | 80.0 | 35.0 / 70.0 / 140.0 | 1.0 / 12.5 / 25.0 | yes |" in text
    assert (tmp_path / "report" / "drawn" / "pareto.png").stat().st_size > 10_000
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Concurrency sweep: drawn" in page and 'src="drawn/pareto.png"' in page


def test_a_real_sweep_draws_one_point_per_level_from_its_sweep_json(real_sweep: Path) -> None:
    sweep = load_sweep(real_sweep)
    assert [(lv.concurrency, lv.status, lv.completed) for lv in sweep.levels] == [(1, "completed", 6),
                                                                                  (2, "completed", 6),
                                                                                  (3, "completed", 6)]
    pareto = build_report([real_sweep]).sweep_figures["fake-sweep"]["pareto"].axes[0]
    assert [tuple(p) for p in pareto.collections[0].get_offsets()] == pytest.approx(
        [(lv.tokens_per_s_per_user, lv.system_tokens_per_s) for lv in sweep.levels])


def test_level_directories_given_one_by_one_make_one_sweep(real_sweep: Path, tmp_path: Path) -> None:
    levels = sorted(real_sweep.glob("concurrency-*"))
    report = build_report(levels)
    [sweep] = report.sweeps
    assert sweep.name == "fake-sweep" and [lv.concurrency for lv in sweep.levels] == [1, 2, 3]
    by_json = {lv.concurrency: lv.to_json() for lv in load_sweep(real_sweep).levels}
    assert {lv.concurrency: lv.to_json() for lv in sweep.levels} == by_json  # recomputed from samples.jsonl
    assert len(report.sweep_figures["fake-sweep"]["pareto"].axes[0].texts) == 3
