"""What actually ran, per run directory, and where runs contradict each other or the system description.

`submission package` packages a scenario only when its performance, accuracy and TEST06 runs used one
backend, model, dataset, precision and framework, on the hardware the system description claims; each
contradiction is one line (refused, or shown first in the README under --allow-unsubmittable). The
deviations and the re-runnable commands a reviewer reads are derived here from what ran, not from the
config defaults.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artifacts import Manifest
from submission.system import SystemDescription

__all__ = ["REFERENCE_MODEL", "RunFacts", "command_line", "contradictions", "deviations", "run_facts"]

REFERENCE_MODEL = "meta-llama/Llama-2-70b-chat-hf"
# Words the system description's framework must contain for the backend a run used.
_BACKEND_WORDS = {"trtllm": ("tensorrt",), "vllm": ("vllm",), "hf": ("transformers", "pytorch"), "fake": ("fake",)}
_FRAMEWORK_VERSIONS = ("tensorrt_llm", "tensorrt-llm", "vllm", "torch", "transformers", "mlcommons-loadgen",
                       "mlperf-llm-harness")
_MODULES = {"harness/__main__.py": "harness", "compliance/__main__.py": "compliance",
            "submission/__main__.py": "submission"}


@dataclass(frozen=True)
class RunFacts:
    """The facts of one run that must agree across a scenario's runs (and with the system description)."""

    role: str
    path: Path
    backend: str
    backend_name: str
    model: str
    weights: str  # the model path or id the weights came from
    dtype: str
    dataset: str
    dataset_sha256: str
    world_size: int
    hosts: tuple[str, ...]
    versions: dict[str, str]
    model_sha256: str = ""  # the loaded model files' sha256 (manifest details.model_sha256; "" = none loaded)

    @property
    def weights_format(self) -> str:
        """gguf, safetensors ... as far as the weights' name says; "" when it does not."""
        name = self.weights.lower()
        for suffix in ("gguf", "safetensors", "bin", "engine"):
            if name.endswith("." + suffix) or f".{suffix}/" in name or suffix in name.split("-"):
                return suffix
        return ""


def run_facts(role: str, path: Path, manifest: Manifest, config: dict[str, Any]) -> RunFacts:
    """The facts of a run from its manifest and effective config.yaml."""
    backend = config.get("backend") or {}
    model = config.get("model") or {}
    launch = manifest.details.get("launch") or {}
    replicas = (manifest.details.get("replicas") or {}).get("names") or []
    hosts = tuple(sorted({str(launch.get("host") or manifest.host), *(str(h).split(":")[0] for h in replicas)}))
    weights = str(model.get("path") or model.get("name") or manifest.model)
    versions = {k: v for k, v in manifest.versions.items() if k in _FRAMEWORK_VERSIONS}
    return RunFacts(role, path, manifest.backend, manifest.backend_name or manifest.backend, manifest.model,
                    weights, str(backend.get("dtype") or "auto"), manifest.dataset,
                    str(manifest.details.get("dataset_sha256") or ""), int(launch.get("world_size") or 1),
                    hosts, versions, str(manifest.details.get("model_sha256") or ""))


def contradictions(runs: list[RunFacts], system: SystemDescription, system_file: str) -> list[str]:
    """One line per fact on which a scenario's runs disagree with each other or with the system description."""
    found: list[str] = []
    first = runs[0]
    for key in ("backend", "model", "weights", "model_sha256", "dtype", "dataset_sha256"):
        values = {getattr(r, key) for r in runs}
        if len(values) > 1:
            seen = "; ".join(f"{r.role} {r.path}: {getattr(r, key) or 'not recorded'}" for r in runs)
            found.append(f"runs of one scenario used different {key.replace('_', ' ')} ({seen}); "
                         "expected the same for its performance, accuracy and TEST06 runs")
    for name in sorted({n for r in runs for n in r.versions}):
        values = {r.versions.get(name, "absent") for r in runs}
        if len(values) > 1:
            found.append(f"runs of one scenario used different {name} versions ({', '.join(sorted(values))})")
    found += _against_system(first, runs, system, system_file)
    return found


def _against_system(first: RunFacts, runs: list[RunFacts], system: SystemDescription, where: str) -> list[str]:
    found = []
    framework = system.framework.lower()
    for run in runs:
        words = _BACKEND_WORDS.get(run.backend, (run.backend,))
        if not any(word in framework for word in words):
            found.append(f"{where}: framework is {system.framework!r} but the {run.role} run {run.path} ran "
                         f"backend {run.backend_name}; expected the framework to name {' or '.join(words)} "
                         "(describe the system the runs used, or rerun on the described one)")
    accelerators = system.number_of_nodes * system.accelerators_per_node
    for run in runs:
        if run.world_size not in (1, accelerators) or (run.world_size == 1 and accelerators > 1
                                                       and run.backend in ("fake", "hf")):
            found.append(f"{where}: {system.number_of_nodes} node(s) x {system.accelerators_per_node} "
                         f"{system.accelerator_model_name} = {accelerators} accelerators, but the {run.role} run "
                         f"{run.path} ran {run.world_size} rank(s) of backend {run.backend_name} on "
                         f"{', '.join(run.hosts)}")
        if len(run.hosts) > system.number_of_nodes:
            found.append(f"{where}: number_of_nodes is {system.number_of_nodes} but the {run.role} run used "
                         f"{len(run.hosts)} hosts ({', '.join(run.hosts)})")
    return list(dict.fromkeys(found))


def deviations(facts: RunFacts, manifest: Manifest) -> list[str]:
    """Open-division deviations of a run, from what ran (the backend, weights and data it used)."""
    found: list[str] = []
    if facts.backend == "fake":
        found.append(f"backend {facts.backend_name} is a test fake: no model ran and the outputs are synthetic")
    recorded = [d for d in manifest.deviations if not (facts.backend == "fake" and d.startswith("model:"))]
    found += recorded
    if facts.backend != "fake" and REFERENCE_MODEL.split("/")[-1].lower() not in facts.weights.lower() and not any(
            d.startswith("model:") for d in recorded):
        found.append(f"model: {facts.weights} instead of {REFERENCE_MODEL}")
    if facts.weights_format == "gguf":
        found.append(f"weights: {facts.weights} is a GGUF file (quantized), dequantized to {facts.dtype} "
                     "for inference")
    elif facts.dtype not in ("auto", "float16", "bfloat16") and facts.backend != "fake":
        found.append(f"weights cast to {facts.dtype} (the reference runs float16/bfloat16)")
    if manifest.sample_count != 24576 or "embedded" in facts.dataset or "smoke" in facts.dataset:
        found.append(f"dataset: {facts.dataset} ({manifest.sample_count} samples, sha256 "
                     f"{facts.dataset_sha256 or 'not recorded'}) instead of the 24,576-sample OpenOrca reference set")
    return list(dict.fromkeys(found))


def command_line(manifest: Manifest, run_dir: Path) -> str:
    """The run's command as a shell line to type from RUN_ROOT, the directory it was started in (recorded as
    details.cwd; the run directory's parent for older runs), with paths relative to it and the recorded
    environment (the allowlist of harness.artifacts.recorded_environment) in front."""
    cwd = str(manifest.details.get("cwd") or run_dir.resolve().parent)
    parts = list(manifest.command)
    if not parts:
        return "(not recorded)"
    head = parts[0].replace("\\", "/")
    module = next((name for suffix, name in _MODULES.items() if head.endswith(suffix)), None)
    words = ["python", "-m", module] if module else [_relative(head, cwd)]
    words += [_relative(part, cwd) for part in parts[1:]]
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(manifest.environment.items())]
    return " ".join([*env, *(shlex.quote(w) for w in words)])


def _relative(part: str, cwd: str) -> str:
    if "=" in part and not part.startswith("/"):
        key, _, value = part.partition("=")
        return f"{key}={_relative(value, cwd)}" if value.startswith("/") else part
    if not part.startswith("/") or not cwd:
        return part
    return os.path.relpath(part, cwd)
