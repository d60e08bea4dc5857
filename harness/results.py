"""Reads a finished LoadGen test's detail log into the run manifest's result section."""

from __future__ import annotations

from pathlib import Path

from harness.artifacts import DETAIL, RunResult
from harness.logs import parse_detail_log
from harness.rounds import RoundSpec

__all__ = ["loadgen_result"]

_KEYS = RunResult.detail_log_keys()


def loadgen_result(run_dir: Path, spec: RoundSpec) -> RunResult:
    """Key results, error messages and a seed check from mlperf_log_detail.txt."""
    path = run_dir / DETAIL
    if not path.is_file():
        return RunResult(loadgen_errors=1, loadgen_error_messages=[f"{DETAIL} was not written"])
    log = parse_detail_log(path)
    result: dict[str, object] = {key: log[key] for key in _KEYS if log[key] is not None}
    errors = log.errors
    result["loadgen_errors"] = log.num_errors()
    result["loadgen_error_messages"] = [f"{m.key}: {m.value}" for m in errors[:5]]
    result["loadgen_warnings"] = len(log.warnings)
    expected = {"effective_qsl_rng_seed": spec.seeds.qsl, "effective_sample_index_rng_seed": spec.seeds.sample_index,
                "effective_schedule_rng_seed": spec.seeds.schedule}
    wrong = [f"{k}={log[k]} (expected {v})" for k, v in expected.items() if log[k] is not None and int(log[k]) != v]
    if wrong:
        result["seed_mismatch"] = "; ".join(wrong)
    return RunResult.model_validate(result)
