"""The measurements of one scenario: <sys>_<impl>_<scenario>.json, README.md from the run manifest, confs.

The JSON's five keys must be present and truthy (mlperf-rules.md §2.5); the README states the exact
commands, versions, hardware and every open-division deviation, and says plainly when a run is not
submittable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.artifacts import Manifest
from harness.errors import InputError
from harness.redact import redact_argv, redact_text
from harness.safe_paths import read_contained
from submission.system import SystemDescription

_PLACEHOLDERS = frozenset({"", "n/a", "na", "tbd", "unknown", "-", "?"})
_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


class MeasurementsInfo(BaseModel):
    """<system>_<implementation>_<scenario>.json: where the weights came from and their data types."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    starting_weights_filename: str = Field(description="e.g. meta-llama/Llama-2-70b-chat-hf")
    weight_transformations: str = Field(description='e.g. "quantization"; "none" when there are none')
    weight_data_types: str = Field(description="e.g. fp8, fp16")
    input_data_types: str = Field(description="e.g. int32 token ids")
    retraining: str = Field(description="yes / no")

    @field_validator("*")
    @classmethod
    def _meaningful(cls, value: str) -> str:
        if value.strip().lower() in _PLACEHOLDERS:
            raise ValueError(f"is {value!r}; the checker needs a meaningful value (use \"none\" or \"no\")")
        return value


def read_measurements_override(path: Path | None) -> dict[str, str]:
    """Keys from a user's measurements JSON (--measurements FILE), validated key by key."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError too
        raise InputError(f"--measurements {path} cannot be read as JSON ({err})",
                         hint="pass a JSON object of measurements keys") from None
    unknown = sorted(set(data) - set(MeasurementsInfo.model_fields))
    if not isinstance(data, dict) or unknown:
        raise InputError(f"--measurements {path} has unknown keys {unknown}; expected only "
                         f"{', '.join(MeasurementsInfo.model_fields)}")
    return {str(k): str(v) for k, v in data.items()}


def run_config(run_dir: Path) -> dict[str, Any]:
    """The run's effective config.yaml (empty when absent)."""
    path = run_dir / "config.yaml"
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        data = yaml.safe_load(read_contained(run_dir, "config.yaml"))
    except yaml.YAMLError as err:
        raise InputError(f"{path} is not valid YAML: {str(err).splitlines()[0]}",
                         hint="it is written by `harness run`; rerun the run or restore the file") from None
    return data if isinstance(data, dict) else {}


def derive_info(manifest: Manifest, config: dict[str, Any], override: dict[str, str]) -> MeasurementsInfo:
    """The measurements JSON for a run: derived from its manifest and config, user values win."""
    backend = config.get("backend") or {}
    dtype = str(backend.get("dtype") or "")
    if manifest.backend == "fake":
        weights = "none: test fake backend, no weights"
    else:
        weights = _DTYPES.get(dtype, f"as stored in {manifest.model}" if dtype in ("", "auto") else dtype)
    derived = {
        "starting_weights_filename": manifest.model or "unknown model",
        "weight_transformations": "none",
        "weight_data_types": weights,
        "input_data_types": f"{manifest.response_dtype} token ids",
        "retraining": "no",
    }
    try:
        return MeasurementsInfo.model_validate(derived | override)
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"measurements JSON: {first['loc'][0]} {first['msg']}",
                         hint="fix it in the --measurements file") from None


def render_readme(runs: list[tuple[str, Manifest]], system: SystemDescription, round_name: str,
                  unsubmittable: list[str]) -> str:
    """README.md of a measurements dir: how each run was made, on what, and how it deviates."""
    lines = [f"# {runs[0][1].benchmark} {runs[0][1].scenario}: how these results were produced", "",
             f"Round {round_name}, open division. Produced by mlperf-llm-harness.", ""]
    if unsubmittable:
        lines += ["## NOT A VALID SUBMISSION", "",
                  "This tree was packaged with `--allow-unsubmittable`. These results are not submittable:", ""]
        lines += [f"- {reason}" for reason in unsubmittable] + [""]
    lines += ["## Hardware", "", f"- system: {system.system_name}",
              f"- nodes: {system.number_of_nodes} x {system.accelerators_per_node} {system.accelerator_model_name}",
              f"- host: {system.host_processors_per_node}x {system.host_processor_model_name}, "
              f"{system.host_memory_capacity} memory", f"- network: {system.host_networking}", ""]
    for role, manifest in runs:
        lines += _run_section(role, manifest)
    return "\n".join(lines).rstrip() + "\n"


def _run_section(role: str, manifest: Manifest) -> list[str]:
    # Redacted again here: a manifest written by an older harness may still hold a secret.
    command = " ".join(_quote(part) for part in redact_argv(manifest.command)) or "(not recorded)"
    lines = [f"## {role} run", "", f"- mode: {manifest.mode}; status: {manifest.status.value}; "
             f"backend: {manifest.backend_name or manifest.backend}; model: {redact_text(manifest.model)}",
             f"- dataset: {redact_text(manifest.dataset)} ({manifest.sample_count} samples); host: {manifest.host}",
             f"- started {manifest.started_at}, ended {manifest.ended_at}; harness commit: {manifest.git_commit}",
             "", "Command:", "", "```", command, "```", "", "Versions:", ""]
    lines += [f"- {name} {version}" for name, version in sorted(manifest.versions.items())]
    lines += ["", "Open-division deviations from the reference implementation:", ""]
    lines += [f"- {redact_text(item)}" for item in manifest.deviations] or ["- none"]
    return [*lines, ""]


def _quote(part: str) -> str:
    return f"'{part}'" if any(c.isspace() for c in part) or not part else part
