"""Sweep metrics (harness/report/sweep.py) on hand-computed cases: TTFT, TPOT, the "lower" percentile, system
tokens/s over endpoints' window, tokens/s per user, and the Pareto front with ties and dominated points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.report.data import Timing
from harness.report.sweep import (
    LevelMetrics,
    Sweep,
    level_metrics,
    load_sweep,
    pareto_front,
    percentile_lower,
    read_level,
)

MS = 1_000_000


def timing(issued_ms: float, first_ms: float | None, done_ms: float | None, tokens: int) -> Timing:
    return Timing(0, int(issued_ms * MS), None if first_ms is None else int(first_ms * MS),
                  None if done_ms is None else int(done_ms * MS), tokens, None)


def test_percentile_lower_returns_an_observed_value_at_or_below_the_interpolation_point() -> None:
    values = [10.0, 20.0, 30.0, 40.0]  # numpy "lower": index floor(q/100 * (n-1))
    assert [percentile_lower(values, q) for q in (50, 90, 99, 100, 0)] == [20.0, 30.0, 30.0, 40.0, 10.0]
    assert percentile_lower(list(range(1, 11)), 90) == 9  # floor(0.9 * 9) = 8 -> 9
    assert percentile_lower([], 90) is None


def test_level_metrics_by_hand() -> None:
    timings = [
        timing(0, 100, 1100, 11),    # TTFT 100, TPOT (1100-100)/10 = 100
        timing(0, 200, 600, 5),      # TTFT 200, TPOT 400/4 = 100
        timing(500, 550, 2000, 30),  # TTFT 50, TPOT 1450/29 = 50
        timing(600, 700, 700, 1),    # one token: TTFT 100, no TPOT
        timing(700, None, None, 0),  # failed: not counted
    ]
    metrics = level_metrics(4, 4, timings, errors=1, directory="concurrency-4")
    assert (metrics.completed, metrics.errors, metrics.output_tokens) == (4, 1, 47)
    assert metrics.duration_s == pytest.approx(2.0)  # last completion 2000 ms - first issue 0 ms
    assert metrics.system_tokens_per_s == pytest.approx(47 / 2.0)
    assert metrics.requests_per_s == pytest.approx(4 / 2.0)
    assert metrics.ttft_ms == {"p50": 100.0, "p90": 100.0, "p99": 100.0}  # sorted 50,100,100,200: idx 1,2,2
    assert metrics.tpot_ms == {"p50": 100.0, "p90": 100.0, "p99": 100.0}  # sorted 50,100,100: idx 1,1,1
    assert metrics.tokens_per_s_per_user == pytest.approx(10.0)  # 1000 / 100 ms


def test_tpot_excludes_the_first_token_and_per_user_uses_p90() -> None:
    timings = [timing(0, 10, 10 + 2 * (n - 1) * k, n) for k, n in ((1, 5), (2, 5), (3, 5), (4, 5), (5, 5))]
    metrics = level_metrics(1, 1, timings, errors=0, directory="c")
    assert metrics.tpot_ms == {"p50": 6.0, "p90": 8.0, "p99": 8.0}  # 2,4,6,8,10 ms; idx 2, 3, 3
    assert metrics.tokens_per_s_per_user == pytest.approx(125.0)


def test_a_level_with_nothing_completed_has_no_rates() -> None:
    metrics = level_metrics(2, 2, [timing(0, None, None, 0)], errors=1, directory="c", status="failed", error="x")
    assert (metrics.system_tokens_per_s, metrics.tokens_per_s_per_user, metrics.plotted) == (None, None, False)


@pytest.mark.parametrize(("points", "front"), [
    ([(1, 10), (2, 8), (3, 5), (0.5, 9)], [0, 1, 2]),       # (0.5, 9) is dominated by (1, 10)
    ([(1, 10), (1, 10), (2, 1)], [0, 1, 2]),                 # equal points dominate neither
    ([(1, 10), (1, 9)], [0]),                                # same x, lower y: dominated
    ([(1, 10), (2, 10)], [1]),                               # same y, lower x: dominated
    ([(5, 5)], [0]),
    ([], []),
])
def test_pareto_front_keeps_exactly_the_undominated_points(points: list[tuple[float, float]],
                                                           front: list[int]) -> None:
    assert pareto_front(points) == front


def test_pareto_front_is_ordered_by_tokens_per_user() -> None:
    assert pareto_front([(3, 1), (1, 3), (2, 2)]) == [1, 2, 0]


def _level(concurrency: int, per_user: float | None, tps: float | None, status: str = "completed") -> LevelMetrics:
    return LevelMetrics(concurrency, concurrency, status, 1, 0, 1, 1.0, tps, 1.0, {"p90": 1.0}, {"p90": 1.0},
                        per_user, f"concurrency-{concurrency}")


def test_sweep_front_skips_failed_levels() -> None:
    sweep = Sweep(Path("s"), "s", [], "", [], [_level(1, 100, 10), _level(2, 60, 18), _level(4, 30, 15),
                                               _level(8, 20, 50, status="failed")])
    assert [level.concurrency for level in sweep.plotted] == [1, 2, 4]
    assert [level.concurrency for level in sweep.front()] == [2, 1]


def test_sweep_json_round_trips_and_a_newer_or_malformed_one_is_refused(tmp_path: Path) -> None:
    sweep = Sweep(tmp_path, tmp_path.name, ["http://h:8000"], "2026-01-01T00:00:00+00:00", ["harness"],
                  [_level(1, 100, 10)])
    (tmp_path / "sweep.json").write_text(json.dumps(sweep.to_json()))
    assert load_sweep(tmp_path) == sweep
    (tmp_path / "sweep.json").write_text(json.dumps({**sweep.to_json(), "schema_version": 99}))
    with pytest.raises(InputError, match="schema_version 99; this harness reads up to 1"):
        load_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text(json.dumps({**sweep.to_json(), "levels": [{"concurrency": "x"}]}))
    with pytest.raises(InputError, match="a level entry is malformed"):
        load_sweep(tmp_path)
    (tmp_path / "sweep.json").write_text("{")
    with pytest.raises(InputError, match="not readable JSON"):
        load_sweep(tmp_path)


def test_a_level_directory_is_recomputed_from_its_samples(tmp_path: Path) -> None:
    (tmp_path / "level.json").write_text(json.dumps({"concurrency": 2, "in_flight": 2, "errors": 0}))
    rows = [{"qsl_idx": i, "issued_ns": 0, "first_token_ns": 10 * MS, "completed_ns": (10 + 4 * k) * MS,
             "n_tokens": 5, "replica": None} for i, k in enumerate((1, 2))]
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    level = read_level(tmp_path)
    assert (level.concurrency, level.completed, level.output_tokens) == (2, 2, 10)
    assert level.tpot_ms["p90"] == 1.0 and level.tokens_per_s_per_user == 1000.0  # TPOTs 1 and 2 ms; idx 0
    assert level.system_tokens_per_s == pytest.approx(10 / 0.018)
