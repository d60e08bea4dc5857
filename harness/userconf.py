"""Renders the run's LoadGen user.conf from config.loadgen, shortening development runs openly."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.config import RunConfig

__all__ = ["FULL_DATASET", "MIN_DURATION_MS", "UserConf", "render_user_conf"]

FULL_DATASET = 24576
MIN_DURATION_MS = 600000


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
    for key in ("target_qps", "min_duration", "max_duration", "min_query_count", "max_query_count",
                "performance_sample_count_override"):
        value = getattr(loadgen, key)
        if value is not None:
            values[key] = value
    if loadgen.server_coalesce_queries is not None:
        values["coalesce_queries"] = int(loadgen.server_coalesce_queries)
    shortened: list[str] = []
    if sample_count < FULL_DATASET:
        shortened.append(f"the QSL has {sample_count} samples; a submission needs all {FULL_DATASET}")
        values.setdefault("performance_sample_count_override", sample_count)
        values.setdefault("min_query_count", sample_count)
        values.setdefault("min_duration", 0)
    if values.get("min_duration", MIN_DURATION_MS) < MIN_DURATION_MS:
        shortened.append(f"min_duration is {values['min_duration']} ms; a submission needs ≥ {MIN_DURATION_MS}")
    if "performance_sample_count_override" in values and values["performance_sample_count_override"] < FULL_DATASET:
        shortened.append(f"performance_sample_count_override is {values['performance_sample_count_override']}")
    if "min_query_count" in values and config.scenario.value == "Offline" and values["min_query_count"] < FULL_DATASET:
        shortened.append(f"Offline min_query_count is {values['min_query_count']}; the checker needs 24576 samples")
    model, scenario = config.loadgen_model_name, config.scenario.loadgen_scenario
    lines = [
        f"# LoadGen user.conf written by harness for {config.benchmark} {config.scenario.value} ({config.round}).",
        "# Keys: model.scenario.key = value (LoadGen's own names; times in ms).",
    ]
    lines += [f"{model}.{scenario}.{key} = {_number(value)}" for key, value in values.items()]
    return UserConf("\n".join(lines) + "\n", values, list(dict.fromkeys(shortened)))


def _number(value: float | int) -> str:
    return str(int(value)) if float(value).is_integer() and not isinstance(value, bool) else repr(float(value))
