"""What actually ran, per run directory, and where runs contradict each other or the system description.

`submission package` packages a scenario only when its performance, accuracy and TEST06 runs used one
backend, model, dataset, precision and framework, on the hardware the system description claims; each
contradiction is one line (refused, or shown first in the README under --allow-unsubmittable). The
deviations and the re-runnable commands a reviewer reads are derived here from what ran, not from the
config defaults.

What produced the tokens is typed here as ServedEngine rows (manifest `details.engines`): for the endpoint
backend one per URL, with the engine flavour, the version and model each server reported and its cross-query
prefix-caching setting; for in-process engines the setting they ran with. An endpoint run is compared with the
system description through the engines its servers reported, not through the backend kind.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artifacts import Manifest
from harness.benchmarks.facts import BenchmarkFacts
from harness.benchmarks.registry import BENCHMARK_NAMES, benchmark_facts
from submission.system import SystemDescription

__all__ = ["RunFacts", "ServedEngine", "caching_problems", "command_line", "contradictions",
           "deviations", "run_facts"]

# Words the system description's framework must contain for the backend a run used.
_BACKEND_WORDS = {"trtllm": ("tensorrt",), "vllm": ("vllm",), "hf": ("transformers", "pytorch"), "fake": ("fake",)}
_FRAMEWORK_VERSIONS = ("tensorrt_llm", "tensorrt-llm", "vllm", "torch", "transformers", "mlcommons-loadgen",
                       "mlperf-llm-harness")
_MODULES = {"harness/__main__.py": "harness", "compliance/__main__.py": "compliance",
            "submission/__main__.py": "submission"}
IN_PROCESS = "in-process"
# Served engines (endpoint flavours): the word the framework must contain, and the name used in messages.
_ENGINE_WORDS = {"vllm": ("vllm", "vLLM"), "trtllm-serve": ("tensorrt", "TensorRT-LLM (trtllm-serve)"),
                 "sglang": ("sglang", "SGLang")}
# Backends without a cross-query KV cache: each batch starts from an empty cache.
_NO_CROSS_QUERY_CACHE = {"hf": "transformers generate: a fresh KV cache per batch", "fake": "no model runs"}
# In-process engines: the config key that decides their cross-query caching, its TensorRT-LLM/vLLM meaning.
_IN_PROCESS_CACHING = {"vllm": "enable_prefix_caching", "trtllm": "enable_block_reuse"}
_CACHING_FIXES = {  # engine -> (what is on, how to turn it off)
    "vllm": ("vLLM --enable-prefix-caching", "start it with --no-enable-prefix-caching"),
    "sglang": ("SGLang's radix cache (cross-query prefix caching)", "start it with --disable-radix-cache"),
    "trtllm-serve": ("TensorRT-LLM kv_cache_config.enable_block_reuse",
                     "start trtllm-serve with --extra_llm_api_options holding kv_cache_config: "
                     "{enable_block_reuse: false} (`harness slurm` serve stages render it so)"),
    "generic": ("cross-query prefix caching", "use the server's flavour (vllm, trtllm-serve, sglang) with caching off"),
}


@dataclass(frozen=True)
class ServedEngine:
    """The engine one serving unit of a run used (a row of manifest details.engines, typed)."""

    unit: str  # the endpoint URL, or "in-process"
    engine: str  # vllm, trtllm-serve, sglang, generic (servers); vllm, trtllm, hf, fake (in process)
    version: str = "unknown"
    model: str = ""  # the served model id
    model_root: str = ""  # the path it was loaded from, where the server says it
    prefix_caching: str = "unknown"  # on | off | unknown: cross-query prefix caching / KV-cache reuse
    source: str = ""  # where the setting comes from

    @property
    def served(self) -> bool:
        """A separately started server (the endpoint backend), not an engine in the harness process."""
        return self.unit != IN_PROCESS


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
    engines: tuple[ServedEngine, ...] = ()  # what produced the tokens, per serving unit

    @property
    def served_engine(self) -> str:
        """The engines and versions that produced the tokens, e.g. "vllm 0.32.0" ("" when none was recorded)."""
        return ", ".join(sorted({f"{e.engine} {e.version}" for e in self.engines}))

    @property
    def prefix_caching(self) -> str:
        """on when any unit cached across queries, unknown when any did not say (or nothing was recorded), else off."""
        states = {engine.prefix_caching for engine in self.engines} or {"unknown"}
        return "on" if "on" in states else "unknown" if states - {"off"} else "off"

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
    engines = _engines(manifest, backend)
    served = [engine for engine in engines if engine.served]
    name = manifest.model
    if served:  # the checkpoint the servers served, not the harness's own model setting (a tokenizer there)
        name = served[0].model or name
        weights = served[0].model_root or served[0].model or weights
    return RunFacts(role, path, manifest.backend, manifest.backend_name or manifest.backend, name,
                    weights, str(backend.get("dtype") or "auto"), manifest.dataset,
                    str(manifest.details.get("dataset_sha256") or ""), int(launch.get("world_size") or 1),
                    hosts, versions, str(manifest.details.get("model_sha256") or ""), engines)


def _rows(value: Any) -> list[dict[str, Any]]:
    """details.engines rows; replicas that reported differently are merged as a list of their lists."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [row for item in value for row in _rows(item)]
    return []


def _engines(manifest: Manifest, backend: dict[str, Any]) -> tuple[ServedEngine, ...]:
    """What produced the tokens: the recorded rows, else what the backend kind and the run's config fix."""
    rows = _rows(manifest.details.get("engines"))
    if rows:
        return tuple(dict.fromkeys(
            ServedEngine(str(row.get("url") or IN_PROCESS), str(row.get("engine") or manifest.backend),
                         str(row.get("version") or "unknown"), str(row.get("model") or ""),
                         str(row.get("model_root") or ""), _state(row.get("prefix_caching")),
                         str(row.get("prefix_caching_source") or "")) for row in rows))
    kind = manifest.backend
    if kind in _NO_CROSS_QUERY_CACHE:
        return (ServedEngine(IN_PROCESS, kind, prefix_caching="off", source=_NO_CROSS_QUERY_CACHE[kind]),)
    key = _IN_PROCESS_CACHING.get(kind)
    if key is not None:  # the in-process engines start with exactly the config's setting (engine args cannot repeat it)
        setting = backend.get(key)
        state = "unknown" if not isinstance(setting, bool) else "on" if setting else "off"
        version = manifest.versions.get("vllm" if kind == "vllm" else "tensorrt_llm", "unknown")
        return (ServedEngine(IN_PROCESS, kind, version, prefix_caching=state,
                             source=f"backend.{key} in the run's config"),)
    return ()


def _state(value: Any) -> str:
    return value if value in ("on", "off") else "unknown"


def contradictions(runs: list[RunFacts], system: SystemDescription, system_file: str) -> list[str]:
    """One line per fact on which a scenario's runs disagree with each other or with the system description."""
    found: list[str] = []
    first = runs[0]
    for key in ("backend", "served_engine", "model", "weights", "model_sha256", "dtype", "dataset_sha256"):
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
        if run.backend == "endpoint":
            found += _served_against_framework(run, system.framework, where)
            continue
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


def _served_against_framework(run: RunFacts, framework: str, where: str) -> list[str]:
    """An endpoint run against the framework: every server's engine word and reported version must be named."""
    served = [engine for engine in run.engines if engine.served]
    if not served:
        return [f"{where}: the {run.role} run {run.path} recorded no served engine (a manifest from before engines "
                "were recorded); expected details.engines; rerun it with this harness"]
    found = []
    if len({(e.engine, e.version, e.model_root or e.model) for e in served}) > 1:
        seen = "; ".join(f"{e.unit}: {e.engine} {e.version} {e.model_root or e.model}" for e in served)
        found.append(f"{where}: the {run.role} run {run.path} was served by different engines or models ({seen}); "
                     "expected every URL to run the same engine version and checkpoint")
    tokens = {token.lower().removeprefix("v") for token in re.split(r"[\s,;()/]+", framework) if token}
    for engine in dict.fromkeys(served):
        word, name = _ENGINE_WORDS.get(engine.engine, ("", engine.engine))
        release = engine.version.split("+")[0].lower().removeprefix("v")
        if not word:
            found.append(f"{where}: the {run.role} run {run.path} was served by a {engine.engine} server at "
                         f"{engine.unit}, which names no engine; expected flavour vllm, trtllm-serve or sglang "
                         "(set backend.flavour to the server's)")
        elif word not in framework.lower():
            found.append(f"{where}: framework is {framework!r} but the {run.role} run {run.path} was served by {name} "
                         f"{engine.version} at {engine.unit}; expected the framework to name {name} (describe the "
                         "system the servers ran, or rerun on the described one)")
        elif engine.version == "unknown":
            found.append(f"{where}: the {run.role} run {run.path} was served by {name} at {engine.unit}, which "
                         f"reported no version (GET /version); expected a version to compare with {framework!r}")
        elif release not in tokens:
            found.append(f"{where}: framework is {framework!r} but the {run.role} run {run.path} was served by {name} "
                         f"{engine.version} at {engine.unit}; expected the framework to name version {release}")
    return found


def _caching_lines(run: RunFacts) -> list[str]:
    """One clause per serving unit whose cross-query caching was on or unknown, with the fix."""
    if not run.engines:
        return [f"cross-query prefix caching of backend {run.backend_name} was not recorded (a manifest from before "
                "it was); rerun with this harness, which records it"]
    lines = []
    for engine in dict.fromkeys(run.engines):
        if engine.prefix_caching == "off":
            continue
        if engine.served:
            what, fix = _CACHING_FIXES.get(engine.engine, _CACHING_FIXES["generic"])
        else:
            key = _IN_PROCESS_CACHING.get(engine.engine, "prefix caching")
            what, fix = f"backend.{key} ({engine.engine} in process)", f"set backend.{key}: false"
        state = "is on" if engine.prefix_caching == "on" else f"is unknown ({engine.source or 'not reported'})"
        lines.append(f"{what} {state} at {engine.unit}; {fix}")
    return lines


def caching_problems(facts: Iterable[RunFacts]) -> list[str]:
    """One line per run whose cross-query prefix caching / KV-cache reuse was on or unknown (prohibited in the
    closed division: inference_policies "LLM benchmarks", mlcommons/inference #2445), naming the URL, the
    setting and the fix; empty when every run's caching was off."""
    return [f"the {run.role} run {run.path}: " + "; ".join(lines)
            for run in facts if (lines := _caching_lines(run))]


def deviations(facts: RunFacts, manifest: Manifest) -> list[str]:
    """Open-division deviations of a run, from what ran (the backend, weights and data it used)."""
    found: list[str] = []
    if facts.backend == "fake":
        found.append(f"backend {facts.backend_name} is a test fake: no model ran and the outputs are synthetic")
    recorded = [d for d in manifest.deviations if not (facts.backend == "fake" and d.startswith("model:"))]
    found += recorded
    bench = _facts_of(manifest)
    reference_model = bench.reference_model if bench else "the benchmark's reference checkpoint"
    if facts.backend != "fake" and reference_model.split("/")[-1].lower() not in facts.weights.lower() and not any(
            d.startswith("model:") for d in recorded):
        found.append(f"model: {facts.weights} instead of {reference_model}")
    if facts.weights_format == "gguf":
        found.append(f"weights: {facts.weights} is a GGUF file (quantized), dequantized to {facts.dtype} "
                     "for inference")
    elif facts.dtype not in ("auto", "float16", "bfloat16") and facts.backend != "fake":
        found.append(f"weights cast to {facts.dtype} (the reference runs float16/bfloat16)")
    found += [f"cross-query prefix caching (prohibited in the closed division): {line}"
              for line in _caching_lines(facts)]
    samples = bench.run_samples(manifest.mode == "accuracy", manifest.compliance_test) if bench else None
    if manifest.sample_count != samples or "embedded" in facts.dataset or "smoke" in facts.dataset:
        reference = f"the {samples:,}-sample reference set {bench.dataset}" if bench else \
            "the benchmark's reference set"
        found.append(f"dataset: {facts.dataset} ({manifest.sample_count} samples, sha256 "
                     f"{facts.dataset_sha256 or 'not recorded'}) instead of {reference}")
    return list(dict.fromkeys(found))


def _facts_of(manifest: Manifest) -> BenchmarkFacts | None:
    """The facts of the run's benchmark in its round (None for a name the table does not know)."""
    if manifest.benchmark not in BENCHMARK_NAMES:
        return None
    return benchmark_facts(manifest.benchmark, manifest.round)


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
