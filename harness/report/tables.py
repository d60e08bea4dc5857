"""The tables of a report: one row per run, per endpoint and per sweep level, as Markdown and as HTML cells."""

from __future__ import annotations

from typing import Any

from harness.benchmarks.registry import accuracy_keys
from harness.report.data import RunData
from harness.report.sweep import Sweep

COLUMNS = ("run", "scenario", "mode", "validity", "tokens/s", "TTFT p99 (ms)", "TPOT p99 (ms)",
           "accuracy (the checker's metrics)")


def _number(value: Any, scale: float = 1.0, digits: int = 2) -> str:
    return f"{float(value) / scale:,.{digits}f}" if isinstance(value, (int, float)) else "-"


def _tokens_per_second(run: RunData) -> str:
    result = run.manifest.result
    for value in (result.result_tokens_per_second, result.result_completed_tokens_per_second):
        if value is not None:
            return _number(value)
    done = [t for t in run.timings if t.completed_ns is not None]
    if run.manifest.mode != "performance" or not done:
        return "-"
    span = (max(t.completed_ns or 0 for t in done) - min(t.issued_ns for t in run.timings)) / 1e9
    return f"{_number(sum(t.n_tokens for t in done) / span)} (samples.jsonl)" if span > 0 else "-"


def _validity(run: RunData) -> str:
    if run.manifest.mode != "performance":
        return run.manifest.status.value
    validity = run.manifest.result.result_validity or "-"
    errors = run.manifest.result.loadgen_errors
    return f"{validity}, {errors} LoadGen errors" if errors else validity


def row(run: RunData, name: str) -> list[str]:
    """The cells of one run."""
    result = run.manifest.result
    streams = run.scenario != "Offline" and run.manifest.mode == "performance"
    accuracy = run.accuracy or {}
    scores = " · ".join(f"{k} {_number(accuracy.get(k), digits=4)}" for k in accuracy_keys(run.manifest.benchmark)) \
        if accuracy else "-"
    return [
        name, run.scenario, run.manifest.mode + (f" ({run.manifest.compliance_test})"
                                                 if run.manifest.compliance_test else ""),
        _validity(run), _tokens_per_second(run),
        _number(result.first_token_p99_ns, 1e6, 1) if streams else "-",
        _number(result.time_per_output_token_p99_ns, 1e6, 1) if streams else "-",
        scores,
    ]


def markdown_table(runs: list[RunData], names: list[str]) -> str:
    """A GitHub-flavoured Markdown table across runs."""
    return _table(list(COLUMNS), [row(run, name) for run, name in zip(runs, names, strict=True)])


LOAD_COLUMNS = ("run", "endpoint", "version", "requests", "errors", "output tokens", "share of requests")


def load_rows(run: RunData, name: str) -> list[list[str]]:
    """One row per serving unit (endpoint URL) of a run; none for backends that drive no serving units."""
    total = sum(unit.requests for unit in run.load)
    return [[name, unit.name, unit.version or "-", f"{unit.requests:,}", f"{unit.errors:,}", f"{unit.tokens:,}",
             f"{unit.requests / total:.1%}" if total else "-"] for unit in run.load]


def markdown_load_table(runs: list[RunData], names: list[str]) -> str:
    """Per-endpoint load across runs as a Markdown table ('' when no run drove endpoints)."""
    rows = [cells for run, name in zip(runs, names, strict=True) for cells in load_rows(run, name)]
    if not rows:
        return ""
    return "\n## Per-endpoint load\n\n" + _table(list(LOAD_COLUMNS), rows)


def _table(columns: list[str], rows: list[list[str]]) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(columns), line(["---"] * len(columns)), *(line(cells) for cells in rows)]) + "\n"


SWEEP_COLUMNS = ("concurrency", "in flight", "status", "completed", "errors", "output tokens/s",
                 "tokens/s per user", "TTFT p50 / p90 / p99 (ms)", "TPOT p50 / p90 / p99 (ms)", "Pareto")


def _triple(values: dict[str, float | None]) -> str:
    return " / ".join(_number(values.get(key), digits=1) for key in ("p50", "p90", "p99"))


def sweep_rows(sweep: Sweep) -> list[list[str]]:
    """One row per level of a sweep, by concurrency; Pareto-optimal levels are marked."""
    front = {id(level) for level in sweep.front()}
    return [[str(level.concurrency), str(level.in_flight), level.status, f"{level.completed:,}", f"{level.errors:,}",
             _number(level.system_tokens_per_s, digits=1), _number(level.tokens_per_s_per_user, digits=1),
             _triple(level.ttft_ms), _triple(level.tpot_ms), "yes" if id(level) in front else "-"]
            for level in sorted(sweep.levels, key=lambda level: level.concurrency)]


def markdown_sweep_table(sweep: Sweep) -> str:
    """A sweep's levels as a Markdown section (heading, the URLs, the table)."""
    urls = ", ".join(sweep.urls) or "the configured backend"
    return (f"\n## Concurrency sweep: {sweep.name}\n\nagainst {urls}; TTFT/TPOT percentiles: numpy method "
            f"\"lower\"; tokens/s per user = 1000 / TPOT p90 (ms)\n\n" + _table(list(SWEEP_COLUMNS), sweep_rows(sweep)))
