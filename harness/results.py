"""Reads a finished LoadGen test's detail log into the run manifest's result section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.artifacts import DETAIL
from harness.logs import parse_detail_log
from harness.rounds import RoundSpec

_KEYS = (
    "result_validity", "result_tokens_per_second", "result_samples_per_second",
    "result_completed_samples_per_sec", "result_completed_tokens_per_second",
    "result_first_token_99.00_percentile_latency_ns", "result_time_per_output_token_99.00_percentile_ns",
    "result_first_token_mean_latency_ns", "result_time_per_output_token_mean_ns",
    "result_99.00_percentile_latency_ns", "early_stopping_met", "result_min_duration_met",
    "result_min_queries_met", "requested_use_token_latencies", "effective_min_duration_ms",
    "effective_samples_per_query", "effective_performance_sample_count", "effective_target_qps",
    "loadgen_version", "effective_qsl_rng_seed", "effective_sample_index_rng_seed",
    "effective_schedule_rng_seed",
)


def loadgen_result(run_dir: Path, spec: RoundSpec) -> dict[str, Any]:
    """Key results, error messages and a seed check from mlperf_log_detail.txt."""
    path = run_dir / DETAIL
    if not path.is_file():
        return {"loadgen_errors": 1, "loadgen_error_messages": [f"{DETAIL} was not written"]}
    log = parse_detail_log(path)
    result: dict[str, Any] = {key: log[key] for key in _KEYS if log[key] is not None}
    errors = log.errors
    result["loadgen_errors"] = log.num_errors()
    result["loadgen_error_messages"] = [f"{m.key}: {m.value}" for m in errors[:5]]
    result["loadgen_warnings"] = len(log.warnings)
    expected = {"effective_qsl_rng_seed": spec.seeds.qsl, "effective_sample_index_rng_seed": spec.seeds.sample_index,
                "effective_schedule_rng_seed": spec.seeds.schedule}
    wrong = [f"{k}={log[k]} (expected {v})" for k, v in expected.items() if log[k] is not None and int(log[k]) != v]
    if wrong:
        result["seed_mismatch"] = "; ".join(wrong)
    return result
