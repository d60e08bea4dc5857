"""Renders the run's LoadGen user.conf from config.loadgen, shortening development runs openly."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config import RunConfig
from harness.rounds import round_spec
from harness.types import TestMode

__all__ = ["MIN_DURATION_MS", "UserConf", "offline_query_blowup", "render_user_conf"]

MIN_DURATION_MS = 600000
OFFLINE_DEFAULT_QPS = 1.0  # *.Offline.target_qps of the v4.x mlperf.conf
LOADGEN_SLACK = 1.1  # kSlack of TestSettingsInternal: Offline samples_per_query = 1.1 x duration x target_qps
BYTES_PER_SAMPLE = 48  # QueryMetadata: one SampleMetadata plus one index per issued sample (approximate)


@dataclass(frozen=True)
class UserConf:
    """The user.conf text, its effective values, and why the run is not submittable (if shortened)."""

    text: str
    values: dict[str, float | int]
    shortened: list[str] = field(default_factory=list)


def render_user_conf(config: RunConfig, sample_count: int) -> UserConf:
    """user.conf for one scenario; a dataset below 24,576 samples gets a short, labelled dev run."""
    values: dict[str, float | int] = {}
    loadgen = config.loadgen
    for key in ("target_qps", "target_latency", "min_duration", "max_duration", "min_query_count", "max_query_count",
                "performance_sample_count_override"):
        value = getattr(loadgen, key)
        if value is not None:
            values[key] = value
    if loadgen.server_coalesce_queries is not None:
        values["coalesce_queries"] = int(loadgen.server_coalesce_queries)
    shortened: list[str] = []
    full = config.facts.run_samples(config.mode is TestMode.ACCURACY, config.compliance_test)
    if sample_count < config.facts.performance_samples:
        # a set smaller than mlperf.conf's performance sample count (gpt-oss-120b's 4,395-sample accuracy set, its
        # 990-sample TEST07 set): LoadGen 6.0 must load only what the QSL has (with more, it crashes; measured)
        values.setdefault("performance_sample_count_override", sample_count)
    if sample_count < full:
        shortened.append(f"the QSL has {sample_count} samples; a submission needs all {full}")
        values.setdefault("min_query_count", sample_count)
        values.setdefault("min_duration", 0)
    if values.get("min_duration", MIN_DURATION_MS) < MIN_DURATION_MS:
        shortened.append(f"min_duration is {values['min_duration']} ms; a submission needs ≥ {MIN_DURATION_MS}")
    if "performance_sample_count_override" in values and values["performance_sample_count_override"] < min(
            full, sample_count):
        shortened.append(f"performance_sample_count_override is {values['performance_sample_count_override']}")
    if "min_query_count" in values and config.scenario.value == "Offline" and values["min_query_count"] < full:
        shortened.append(f"Offline min_query_count is {values['min_query_count']}; the checker needs {full} samples")
    model, scenario = config.loadgen_model_name, config.scenario.loadgen_scenario
    lines = [
        f"# LoadGen user.conf written by harness for {config.benchmark} {config.scenario.value} ({config.round}).",
        "# Keys: model.scenario.key = value (LoadGen's own names; times in ms).",
    ]
    lines += [f"{model}.{scenario}.{key} = {_number(value)}" for key, value in values.items()]
    return UserConf("\n".join(lines) + "\n", values, list(dict.fromkeys(shortened)))


def _number(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() and not isinstance(value, bool) else repr(float(value))


def offline_query_blowup(config: RunConfig, values: dict[str, float | int]) -> str | None:
    """Why LoadGen 4.1 would build performance-sample-count Offline queries (one refusal line), or None.

    Models GenerateQueries of mlcommons/inference v4.1 loadgen/loadgen.cc (equal-issue padding): with
    sample_concatenate_permutation on for Offline (the v4.1 mlperf.conf) and samples_per_query already a
    multiple of the loaded sample count, the Server branch runs for Offline too and pads min_queries from 1 to
    that count; LoadGen 5.0 fixed it (mlcommons/inference #2031).
    """
    if (not round_spec(config.round).offline_equal_issue_pads_queries or config.scenario.value != "Offline"
            or config.mode is not TestMode.PERFORMANCE):
        return None
    full = config.facts.performance_samples
    loaded = int(values.get("performance_sample_count_override", full))
    min_queries = int(values.get("min_query_count", full))
    duration_s = float(values.get("min_duration", MIN_DURATION_MS)) / 1000
    target_qps = float(values.get("target_qps", OFFLINE_DEFAULT_QPS))
    per_query = max(min_queries, int(LOADGEN_SLACK * duration_s * target_qps))
    if loaded <= 1 or per_query % loaded != 0:
        return None
    gib = BYTES_PER_SAMPLE * loaded * per_query / 2**30
    fix_qps = (per_query + 1) / (LOADGEN_SLACK * duration_s) if duration_s else None
    fix = (f"set loadgen.target_qps above {fix_qps:.2f}" if fix_qps else "set loadgen.min_query_count") + (
        f" (or loadgen.min_query_count to {per_query + 1}) so that samples_per_query is no multiple of the loaded "
        "samples (measured with LoadGen 4.1: target_qps 50 runs one query of 33,000 samples)")
    return (f"round {config.round} Offline: LoadGen 4.1 would generate {loaded} queries of {per_query} samples "
            f"(about {gib:.1f} GiB before the run starts, and {loaded}x the run time) because samples_per_query "
            f"{per_query} is a multiple of the {loaded} loaded samples: the equal-issue padding bug of LoadGen "
            f"<= 4.1 (GenerateQueries pads min_queries for Offline too; fixed in mlcommons/inference #2031, "
            f"LoadGen 5.0); {fix}")
