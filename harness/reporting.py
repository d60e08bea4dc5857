"""End-of-run summary: validity, throughput, TTFT/TPOT p99 against the benchmark's limits, accuracy, LoadGen errors,
where files are."""

from __future__ import annotations

from rich.table import Table

from harness.artifacts import Manifest
from harness.benchmarks.facts import LatencyLimits
from harness.benchmarks.registry import BENCHMARK_NAMES, accuracy_keys, benchmark_facts

__all__ = ["summary_table"]


def _ms(value: object) -> str:
    return f"{float(value) / 1e6:,.1f} ms" if isinstance(value, (int, float)) else "-"


def _against(value: object, limit_ms: float | None) -> str:
    """'812.0 ms (limit 2,000 ms)', with 'OVER' when the p99 exceeds the benchmark's limit."""
    if limit_ms is None or not isinstance(value, (int, float)):
        return _ms(value)
    over = " OVER" if float(value) / 1e6 > limit_ms else ""
    return f"{_ms(value)} (limit {limit_ms:,.0f} ms{over})"


def _limits(manifest: Manifest) -> LatencyLimits | None:
    """The benchmark's p99 TTFT/TPOT limits for this run's scenario in its round, if it has any."""
    if manifest.benchmark not in BENCHMARK_NAMES:
        return None
    return benchmark_facts(manifest.benchmark, manifest.round).latency.get(manifest.scenario)


def summary_table(manifest: Manifest, run_dir: str) -> Table:
    """A two-column table summarising one run."""
    result = manifest.result
    table = Table(title=f"{manifest.benchmark} {manifest.scenario} {manifest.mode} ({manifest.round})",
                  show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    rows: list[tuple[str, str]] = [
        ("status", manifest.status.value),
        ("backend", manifest.backend_name or manifest.backend),
        ("samples", str(manifest.sample_count)),
    ]
    if manifest.mode == "performance":
        rows.append(("validity", result.result_validity or "-"))
        tokens_per_s = result.result_tokens_per_second or result.result_completed_tokens_per_second
        rows.append(("tokens/s", f"{tokens_per_s or 0:,.2f}"))
        if manifest.scenario == "SingleStream":  # one query at a time: its latency is the metric
            rows.append(("latency p99", _ms(result.latency_p99_ns)))
            rows.append(("TTFT p99", _ms(result.first_token_p99_ns)))
        elif manifest.scenario != "Offline":
            limits = _limits(manifest)
            rows.append(("TTFT p99", _against(result.first_token_p99_ns, limits.ttft_ms if limits else None)))
            rows.append(("TPOT p99", _against(result.time_per_output_token_p99_ns,
                                              limits.tpot_ms if limits else None)))
            rows.append(("samples/s", f"{result.result_completed_samples_per_sec or 0:,.3f}"))
    accuracy = result.accuracy
    if accuracy is not None:
        rows.append(("accuracy", " · ".join(f"{k} {accuracy.get(k)}" for k in accuracy_keys(manifest.benchmark))))
        if result.accuracy_passed is not None:
            rows.append(("targets", "met" if result.accuracy_passed else f"NOT met ({manifest.benchmark})"))
    errors = result.loadgen_errors
    first = result.loadgen_error_messages[0] if result.loadgen_error_messages else ""
    rows.append(("LoadGen errors", str(errors) + (f": {first}" if errors and first else "")))
    why_not = "; ".join(manifest.reason_texts())
    rows.append(("submittable", "yes" if manifest.submittable else f"no: {why_not}"))
    if manifest.deviations:
        rows.append(("deviations", "; ".join(manifest.deviations)))
    rows.append(("run directory", run_dir))
    for what, value in rows:
        table.add_row(what, value)
    return table
