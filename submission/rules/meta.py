"""Rules for systems/*.json, measurements dirs and code dirs, with each round's official verdict.

Verdicts follow the mutation table of mlperf-rules.md §9: e.g. a numeric `framework` crashes the tag
scripts but passes HEAD; `division: "Open"` fails the tag scripts only; a missing measurements
mlperf.conf fails v4.x only; a missing code/<benchmark> fails the tag scripts only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.benchmarks.registry import check_in_round
from harness.errors import ConfigError
from submission.layout import BENCHMARKS, RoundLayout, round_benchmarks
from submission.rules._base import ALL, TAG_SCRIPTS, Findings
from submission.system import (
    EXAMPLES,
    MEANINGFUL_KEYS,
    POWER_KEYS,
    REQUIRED_KEYS,
    STATUSES,
    SYSTEM_TYPES,
    is_placeholder,
)

CSV_TEXT_KEYS = ("system_name", "system_type", "host_processor_model_name", "accelerator_model_name",
                 "framework", "operating_system", "hw_notes", "sw_notes")
MEASUREMENTS_KEYS = ("starting_weights_filename", "weight_transformations", "weight_data_types",
                     "input_data_types", "retraining")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
_V4 = frozenset({"v4"})
_V5 = frozenset({"v5"})
_HEAD = frozenset({"head"})


def _example(key: str) -> str:
    return f"; e.g. {json.dumps(EXAMPLES[key])}" if key in EXAMPLES else ""


def check_system(f: Findings, path: Path, submitter: str) -> None:
    """One systems/<sys>.json against the checker's rules for the round."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        f.add("system-json", path, f"not valid JSON ({err})", "fix the JSON syntax")
        return
    if not isinstance(data, dict):
        f.add("system-json", path, "not a JSON object", "write an object of the 35 system keys")
        return
    for key in REQUIRED_KEYS:
        if key not in data:
            f.add("system-key-missing", path, f"{key} is missing", f"add {key}{_example(key)}")
        elif key in MEANINGFUL_KEYS and not data[key]:
            f.add("system-key-empty", path, f"{key} is {json.dumps(data[key])}; it needs a meaningful value",
                  f"set {key}{_example(key)}")
        elif key in MEANINGFUL_KEYS and is_placeholder(data[key]):
            f.add("system-key-placeholder", path, f"{key} is {json.dumps(data[key])}, a placeholder",
                  f"set a real value{_example(key)}", frozenset())
    for key in data:
        if key not in REQUIRED_KEYS and key not in POWER_KEYS and key != "is_network":
            f.add("system-key-unknown", path, f"{key} is not a system key (the checker warns)",
                  "remove it or fix its spelling", frozenset())
    _check_system_values(f, path, data, submitter)


def _check_system_values(f: Findings, path: Path, data: dict[str, Any], submitter: str) -> None:
    for key in CSV_TEXT_KEYS:
        if key in data and not isinstance(data[key], str):
            f.add("system-text-type", path, f"{key} is {json.dumps(data[key])}, not a string; the v4.0/v5.1 "
                  "checker crashes writing its CSV", f"write {key} as a JSON string", TAG_SCRIPTS)
    division = data.get("division")
    if isinstance(division, str) and division != f.division:
        # HEAD compares case-insensitively; the tag scripts exactly
        fails = ALL if division.lower() != f.division else TAG_SCRIPTS
        f.add("system-division", path, f"division is {division!r}; the directory is {f.division}",
              f'set "division": "{f.division}" (exactly, lower case)', fails)
    owner = data.get("submitter")
    if isinstance(owner, str) and owner.lower() != submitter.lower():
        f.add("system-submitter", path, f"submitter is {owner!r}; the directory is {submitter!r}",
              f'set "submitter": "{submitter}"')
    status = data.get("status")
    if isinstance(status, str) and status and status.lower() not in STATUSES:
        f.add("system-status", path, f"status is {status!r}", f"use one of {', '.join(STATUSES)}")
    _check_system_type(f, path, data.get("system_type"))
    _check_is_network(f, path, data)


def _check_system_type(f: Findings, path: Path, value: Any) -> None:
    if not isinstance(value, str) or not value:
        return
    if value not in VALID_SYSTEM_TYPES:
        f.add("system-type", path, f"system_type is {value!r}", 'use "datacenter" (no spaces)')
    elif value not in SYSTEM_TYPES:
        f.add("system-type", path, f"system_type is {value!r}; Llama 2 70B is a datacenter benchmark, so the "
              "checker calls llama2-70b an invalid model", 'use "datacenter"', TAG_SCRIPTS)


def _check_is_network(f: Findings, path: Path, data: dict[str, Any]) -> None:
    if "is_network" not in data:
        return
    value = data["is_network"]
    if isinstance(value, bool):
        f.add("system-is-network", path, f"is_network is the JSON boolean {json.dumps(value)}; the v4.0/v5.1 "
              "checker crashes on it and HEAD demands the 13 network keys", "remove is_network")
    elif value:
        f.add("system-is-network", path, f"is_network is {json.dumps(value)}; HEAD treats any non-empty value "
              "as network mode and demands network_type, network_media, ...", "remove is_network", _HEAD)


def check_unused(f: Findings, org: Path, layout: RoundLayout, result_systems: set[str]) -> None:
    """v5.1: every systems/*.json and measurements/<sys> must have results."""
    for path in sorted((org / "systems").glob("*.json")):
        if path.stem not in result_systems:
            f.add("system-without-results", path, f"{path.name} has no results/{path.stem}",
                  "remove the unused system description", _V5)
    measurements = org / "measurements"
    if not layout.measurements_in_results and measurements.is_dir():
        for entry in sorted(measurements.iterdir()):
            if entry.is_dir() and entry.name not in result_systems:
                f.add("measurements-without-results", entry, f"measurements/{entry.name} has no results",
                      "remove it", _V5)


def benchmark_name(f: Findings, org: Path, directory: Path) -> str | None:
    """The official benchmark of a results dir name (through open/<org>/model_mapping.json; closed needs the
    official name), or None; a benchmark the round does not carry fails (its checker calls it unknown)."""
    if directory.name in BENCHMARKS:
        return _in_round(f, directory, directory.name)
    mapping_path = org / "model_mapping.json"
    mapping: Any = {}
    if mapping_path.is_file() and not f.closed:  # the checkers read the mapping for open only
        try:
            mapping = json.loads(mapping_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            f.add("model-mapping", mapping_path, f"not valid JSON ({err})", "fix the JSON syntax")
    mapped = mapping.get(directory.name) if isinstance(mapping, dict) else None
    if mapped in BENCHMARKS:
        return _in_round(f, directory, str(mapped))
    names = round_benchmarks(f.round)
    f.add("benchmark-name", directory, f"{directory.name} is not a benchmark of this tool",
          f"name it {' or '.join(names)}" + ("" if f.closed else ", or map it in model_mapping.json"))
    return None


def _in_round(f: Findings, directory: Path, name: str) -> str | None:
    try:
        check_in_round(name, f.round)
    except ConfigError as err:
        f.add("benchmark-round", directory, err.message, err.hint or "use a benchmark of the round")
        return None
    return name


def check_measurements(f: Findings, where: Path, layout: RoundLayout, org: Path, names: tuple[str, str, str]
                       ) -> None:
    """measurements/<sys>/<bench>/<sc>: non-empty README/user.conf(/mlperf.conf), the JSON, the code dir."""
    system, bench_dir, scenario = names
    if not where.is_dir():
        f.add("measurements-dir", where, "no measurements directory for this result",
              "add README.md, user.conf and the measurements JSON")
        return
    for name in layout.measure_files:
        path = where / name
        if not path.is_file() or path.stat().st_size == 0:
            fails = _V4 if name == "mlperf.conf" else ALL
            state = "missing" if not path.is_file() else "empty"
            f.add("measurements-file", path, f"{name} is {state}", f"add a non-empty {name}", fails)
    json_path = _measurements_json(where, layout, system, scenario)
    if json_path is None:
        expected = "measurements.json" if layout.measurements_in_results else f"{system}_<impl>_{scenario}.json"
        f.add("measurements-json", where, f"no {expected}", f"add {expected} with {', '.join(MEASUREMENTS_KEYS)}")
        return
    _check_measurements_json(f, json_path)
    _check_code(f, org, layout, bench_dir, _implementation(json_path, layout, system, scenario))


def _measurements_json(where: Path, layout: RoundLayout, system: str, scenario: str) -> Path | None:
    if layout.measurements_in_results:
        path = where / "measurements.json"
        return path if path.is_file() else None
    found = sorted(p for p in where.iterdir() if p.name.startswith(system) and p.name.endswith(".json"))
    return found[0] if found else None


def _implementation(path: Path, layout: RoundLayout, system: str, scenario: str) -> str:
    if layout.measurements_in_results:
        return ""
    suffix = f"_{scenario}.json"
    return path.name[len(system) + 1:-len(suffix)] if path.name.endswith(suffix) else ""


def _check_measurements_json(f: Findings, path: Path) -> None:
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        f.add("measurements-json", path, f"not valid JSON ({err})", "fix the JSON syntax")
        return
    for key in MEASUREMENTS_KEYS:
        value = data.get(key) if isinstance(data, dict) else None
        if not value:
            f.add("measurements-key", path, f"{key} is {'missing' if value is None else 'empty'}",
                  f"set {key} (e.g. \"none\" / \"no\" rather than \"\")")


def _check_code(f: Findings, org: Path, layout: RoundLayout, bench_dir: str, implementation: str) -> None:
    code = org / layout.code_dir / bench_dir
    if not code.parent.exists():
        f.add("code-dir", code.parent, f"{layout.code_dir}/ is missing: every checker needs the code that "
              "produced the results", f"add {layout.code_dir}/{bench_dir}/<implementation>/ (submission package "
              "writes it)")
    elif not code.exists():
        f.add("code-dir", code, f"{layout.code_dir}/{bench_dir} is missing",
              f"add {layout.code_dir}/{bench_dir}/<implementation>/README.md", TAG_SCRIPTS)
    elif implementation and not (code / implementation).is_dir():
        f.add("code-implementation", code / implementation, f"no code dir for implementation {implementation!r}",
              "name the measurements JSON <system>_<impl>_<scenario>.json after the code dir", frozenset())
