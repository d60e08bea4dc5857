"""The measurements of one scenario: <sys>_<impl>_<scenario>.json, README.md from the run manifest, confs.

The JSON's five keys must be present and truthy (mlperf-rules.md §2.5); the README states the exact
commands, versions, hardware and every open-division deviation, and says plainly when a run is not
submittable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.artifacts import Manifest
from harness.errors import InputError
from harness.measurements import measurements_dir
from harness.redact import redact_text
from harness.safe_paths import read_contained
from submission.provenance import RunFacts, command_line, deviations
from submission.system import SystemDescription

# The keys a closed result's submitter writes by hand (--measurements): where the weights came from and what was
# done to them. The harness can only derive what it loaded, not the checkpoint's origin or its quantization recipe.
HAND_WRITTEN = ("starting_weights_filename", "weight_transformations", "weight_data_types")
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
        text = path.read_text()
    except (OSError, ValueError) as err:  # UnicodeDecodeError is a ValueError too
        raise InputError(f"--measurements {path} cannot be read as JSON ({err})",
                         hint="pass a JSON object of measurements keys") from None
    return _keys(text, f"--measurements {path}")


def _keys(text: str, where: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except ValueError as err:
        raise InputError(f"{where} cannot be read as JSON ({err})", hint="write a JSON object of measurements keys"
                         ) from None
    unknown = sorted(set(data) - set(MeasurementsInfo.model_fields)) if isinstance(data, dict) else []
    if not isinstance(data, dict) or unknown:
        raise InputError(f"{where} has unknown keys {unknown}; expected only "
                         f"{', '.join(MeasurementsInfo.model_fields)}", hint="remove or rename those keys")
    for key, value in data.items():
        if not isinstance(value, str) or value.strip().lower() in _PLACEHOLDERS:
            raise InputError(f"{where}: {key} is {json.dumps(value)}; expected a meaningful string",
                             hint='write what is true, e.g. "none" or "no"')
    return {str(k): str(v) for k, v in data.items()}


@dataclass(frozen=True)
class HandKept:
    """What measurements/<system>/<benchmark>/<scenario>/ gives one scenario: JSON keys and notes."""

    keys: dict[str, str]
    notes: str
    where: str  # the folder, for the README ("" when there is none)


def hand_kept(system_file: Path, benchmark: str, scenario: str) -> HandKept:
    """The hand-written measurements keys and notes kept beside the system description (harness.measurements), read
    as data from inside measurements/<system>/ only; an absent folder gives nothing."""
    folder = measurements_dir(system_file, benchmark, scenario)
    root = folder.path.parents[1]  # measurements/<system>: nothing outside it is read
    if not folder.path.is_dir():
        return HandKept({}, "", "")
    keys = (_keys(read_contained(root, folder.measurements_json), str(folder.measurements_json))
            if folder.measurements_json.exists() else {})
    notes = read_contained(root, folder.notes).strip() if folder.notes.exists() else ""
    return HandKept(keys, redact_text(notes), str(folder.path))


def closed_problems(override: dict[str, str], where: str = "") -> list[str]:
    """Closed: the hand-written measurements keys that neither --measurements nor the measurements/ folder gave."""
    missing = [key for key in HAND_WRITTEN if key not in override]
    if not missing:
        return []
    return [f"{where}the measurements JSON's {', '.join(missing)} are derived from what the harness loaded; a "
            "closed result states them by hand (write them into measurements/<system>/<benchmark>/<scenario>/"
            "measurements.json or pass --measurements FILE, e.g. \"weight_transformations\": "
            "\"quantization to fp8 with ...\")"]


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


def derive_info_all(facts: list[RunFacts], override: dict[str, str]) -> MeasurementsInfo:
    """The measurements JSON of a scenario from all its runs (weights, transformations, data types as they
    were); a value that differs between runs lists each run's; user values (--measurements) win."""
    derived = {
        "starting_weights_filename": _joined(facts, lambda f: "none (test fake backend, no weights)"
                                             if f.backend == "fake" else f.weights),
        "weight_transformations": _joined(facts, _transformation),
        "weight_data_types": _joined(facts, _weight_dtype),
        "input_data_types": "int32 token ids",
        "retraining": "no",
    }
    try:
        return MeasurementsInfo.model_validate(derived | override)
    except ValidationError as err:
        first = err.errors()[0]
        raise InputError(f"measurements JSON: {first['loc'][0]} {first['msg']}",
                         hint="fix it in the --measurements file") from None


def _joined(facts: list[RunFacts], value: Callable[[RunFacts], str]) -> str:
    values = {f.role: value(f) for f in facts}
    if len(set(values.values())) == 1:
        return next(iter(values.values()))
    return "; ".join(f"{role} run: {text}" for role, text in values.items())


def _transformation(facts: RunFacts) -> str:
    if facts.backend == "fake":
        return "none (no weights)"
    if facts.weights_format == "gguf":
        return f"GGUF-quantized weights ({Path(facts.weights).name}) dequantized to {facts.dtype} at load"
    if facts.dtype not in ("auto", ""):
        return f"cast to {facts.dtype} at load"
    return "none"


def _weight_dtype(facts: RunFacts) -> str:
    if facts.backend == "fake":
        return "none (test fake backend, no weights)"
    if facts.weights_format == "gguf":
        return f"GGUF quantized ({Path(facts.weights).name}), computed in {_DTYPES.get(facts.dtype, facts.dtype)}"
    return _DTYPES.get(facts.dtype, f"as stored in {facts.weights}" if facts.dtype in ("", "auto") else facts.dtype)


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
                  problems: tuple[list[str], list[str]], facts: list[RunFacts], info: MeasurementsInfo,
                  division: str = "open") -> str:
    """README.md of a measurements dir: contradictions and validity first, then hardware, software, model,
    weights, dataset, deviations and the re-runnable commands of the runs that are in the tree."""
    unsubmittable, conflicts = problems
    lines = [f"# {runs[0][1].benchmark} {runs[0][1].scenario}: how these results were produced", "",
             f"Round {round_name}, {division} division. Produced by mlperf-llm-harness.", ""]
    if conflicts:
        lines += ["## PROVENANCE CONTRADICTIONS", "",
                  "Packaged with `--allow-unsubmittable` although the runs contradict each other or the system "
                  "description:", ""]
        lines += [f"- {line}" for line in conflicts] + [""]
    if unsubmittable:
        lines += ["## NOT A VALID SUBMISSION", "",
                  "This tree was packaged with `--allow-unsubmittable`. These results are not submittable:", ""]
        lines += [f"- {reason}" for reason in unsubmittable] + [""]
    lines += ["## Hardware (system description)", "", f"- system: {system.system_name}",
              f"- nodes: {system.number_of_nodes} x {system.accelerators_per_node} {system.accelerator_model_name}",
              f"- host: {system.host_processors_per_node}x {system.host_processor_model_name}, "
              f"{system.host_memory_capacity} memory", f"- network: {system.host_networking}",
              f"- framework: {system.framework}; OS: {system.operating_system}", "",
              "## What ran", "", "| run | backend | ranks | hosts | weights (sha256) | dtype | dataset (sha256) |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {f.role} | {f.backend_name} | {f.world_size} | {', '.join(f.hosts)} | {f.weights} "
              f"({f.model_sha256[:16] or _model_hash(f)})"
              f" | {f.dtype} | "
              f"{f.dataset} ({f.dataset_sha256[:16] or 'not recorded'}) |" for f in facts]
    lines += ["", "Measurements JSON (derived from all runs above):", ""]
    lines += [f"- {key}: {value}" for key, value in info.model_dump().items()]
    lines += ["", "Commands run from RUN_ROOT, the directory each run was started in; paths are relative to it",
              "and the recorded environment (CUDA_*, NCCL_*, SLURM_*, ... allowlist) is prefixed.", ""]
    for (role, manifest), fact in zip(runs, facts, strict=True):
        lines += _run_section(role, manifest, fact, division)
    return "\n".join(lines).rstrip() + "\n"


def _model_hash(fact: RunFacts) -> str:
    """The loaded model files' sha256, or why there is none."""
    if fact.model_sha256:
        return fact.model_sha256
    return "none: the test fake loads no model" if fact.backend == "fake" else "not recorded"


def _run_section(role: str, manifest: Manifest, fact: RunFacts, division: str) -> list[str]:
    # Redacted again here: a manifest written by an older harness may still hold a secret.
    lines = [f"## {role} run", "", f"- mode: {manifest.mode}; status: {manifest.status.value}; "
             f"result: {manifest.result.result_validity or 'n/a'}; backend: {fact.backend_name}; "
             f"model: {redact_text(fact.weights)} (sha256 {_model_hash(fact)})",
             f"- dataset: {redact_text(manifest.dataset)} ({manifest.sample_count} samples, sha256 "
             f"{fact.dataset_sha256 or 'not recorded'})",
             f"- started {manifest.started_at}, ended {manifest.ended_at}; harness commit: {manifest.git_commit}",
             "", "Command:", "", "```", redact_text(command_line(manifest, fact.path)), "```", "", "Versions:", ""]
    lines += [f"- {name} {version}" for name, version in sorted(manifest.versions.items())]
    lines += ["", ("Open-division deviations" if division == "open" else "Deviations (the closed division allows "
                   "none)") + " from the reference implementation (from what ran):", ""]
    lines += [f"- {redact_text(item)}" for item in deviations(fact, manifest)] or ["- none"]
    return [*lines, ""]
