"""The end-of-run summary shows TTFT/TPOT p99 against the benchmark's limits of the run's scenario and round."""

from __future__ import annotations

import pytest
from rich.console import Console

from harness.artifacts import Manifest, RunResult
from harness.reporting import summary_table


def _rows(benchmark: str, scenario: str, ttft_ms: float, tpot_ms: float) -> dict[str, str]:
    result = RunResult(result_validity="VALID", first_token_p99_ns=int(ttft_ms * 1e6),
                       time_per_output_token_p99_ns=int(tpot_ms * 1e6))
    manifest = Manifest(round="v6.1", benchmark=benchmark, scenario=scenario, mode="performance", backend="fake",
                        result=result)
    console = Console(width=200, record=True)
    console.print(summary_table(manifest, "runs/x"))
    rows = {}
    for line in console.export_text().splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    return rows


@pytest.mark.parametrize(("bench", "scenario", "ttft", "tpot"), [
    ("llama3.1-8b", "Server", "2,000", "100"), ("llama3.1-8b", "Interactive", "500", "30"),
    ("llama2-70b-99.9", "Server", "2,000", "200"), ("llama2-70b-99.9", "Interactive", "450", "40"),
])
def test_server_and_interactive_show_the_limits_of_the_benchmark(bench: str, scenario: str, ttft: str,
                                                                   tpot: str) -> None:
    rows = _rows(bench, scenario, 412.0, 12.5)
    assert rows["TTFT p99"] == f"412.0 ms (limit {ttft} ms)"
    assert rows["TPOT p99"] == f"12.5 ms (limit {tpot} ms)"


def test_a_p99_over_its_limit_is_marked() -> None:
    rows = _rows("llama3.1-8b", "Interactive", 612.0, 29.0)
    assert rows["TTFT p99"] == "612.0 ms (limit 500 ms OVER)"
    assert rows["TPOT p99"] == "29.0 ms (limit 30 ms)"


def test_offline_shows_no_latency_rows() -> None:
    assert "TTFT p99" not in _rows("llama3.1-8b", "Offline", 1.0, 1.0)
