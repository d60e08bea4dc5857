"""Reads what a report needs from a run directory: manifest, per-sample timings, LoadGen results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.artifacts import CONFIG, DETAIL, SAMPLES, Manifest, RunArtifacts
from harness.benchmarks.facts import BenchmarkFacts
from harness.benchmarks.registry import BENCHMARK_NAMES, benchmark_facts
from harness.errors import InputError
from harness.logs import parse_detail_log


@dataclass(frozen=True)
class Timing:
    """One samples.jsonl record (times in ns, LoadGen rank's monotonic clock)."""

    qsl_idx: int
    issued_ns: int
    first_token_ns: int | None
    completed_ns: int | None
    n_tokens: int
    replica: int | None

    @property
    def ttft_ms(self) -> float | None:
        """Time to first token."""
        return None if self.first_token_ns is None else (self.first_token_ns - self.issued_ns) / 1e6

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first."""
        if self.first_token_ns is None or self.completed_ns is None or self.n_tokens < 2:
            return None
        return (self.completed_ns - self.first_token_ns) / (self.n_tokens - 1) / 1e6


@dataclass(frozen=True)
class RunData:
    """One run directory, read."""

    path: Path
    name: str
    manifest: Manifest
    timings: list[Timing]
    detail: dict[str, Any]
    config: dict[str, Any]

    @property
    def scenario(self) -> str:
        """Offline, Server or Interactive."""
        return self.manifest.scenario

    @property
    def facts(self) -> BenchmarkFacts | None:
        """The facts of the run's benchmark in its round; None for a benchmark this harness does not know."""
        if self.manifest.benchmark not in BENCHMARK_NAMES:
            return None
        return benchmark_facts(self.manifest.benchmark, self.manifest.round)

    @property
    def limits_ms(self) -> tuple[float, float] | None:
        """(TTFT, TPOT) p99 limits of the benchmark for this scenario; None for Offline."""
        limits = self.facts.latency.get(self.scenario) if self.facts else None
        return None if limits is None else (float(limits.ttft_ms), float(limits.tpot_ms))

    @property
    def reference_tokens_per_sample(self) -> float | None:
        """The reference's mean output length in tokens, where the benchmark's checker bounds it."""
        metric = self.facts.metric("tokens_per_sample") if self.facts else None
        return None if metric is None else metric.reference

    @property
    def load(self) -> list[Load]:
        """Per serving unit (endpoint) load from the manifest."""
        return unit_load(self.manifest)

    @property
    def accuracy(self) -> dict[str, Any] | None:
        """ROUGE and tokens_per_sample from the manifest, if the run was scored."""
        return self.manifest.result.accuracy


@dataclass(frozen=True)
class Load:
    """One serving unit's load as the manifest records it (details.load: an endpoint URL and its counters)."""

    name: str
    requests: int
    tokens: int
    errors: int
    version: str


def unit_load(manifest: Manifest) -> list[Load]:
    """details.load of a manifest (empty for backends that drive no serving units); malformed rows are skipped."""
    rows = manifest.details.get("load")
    found = []
    for row in rows if isinstance(rows, list) else []:
        try:
            found.append(Load(str(row["name"]), int(row.get("requests", 0)), int(row.get("tokens", 0)),
                              int(row.get("errors", 0)), str(row.get("version") or "")))
        except (KeyError, TypeError, ValueError, AttributeError):
            continue
    return found


def read_timings(path: Path) -> list[Timing]:
    """samples.jsonl; a malformed line is an InputError naming the line."""
    if not path.is_file():
        return []
    timings = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            timings.append(Timing(int(item["qsl_idx"]), int(item["issued_ns"]), item.get("first_token_ns"),
                                  item.get("completed_ns"), int(item.get("n_tokens", 0)), item.get("replica")))
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}:{number}: not a sample timing record ({err!r})",
                             hint="samples.jsonl lines hold qsl_idx, issued_ns, first_token_ns, completed_ns, "
                                  "n_tokens, replica") from None
    return timings


def _detail(run_dir: Path) -> dict[str, Any]:
    path = run_dir / DETAIL
    if not path.is_file():
        return {}
    log = parse_detail_log(path)
    found: dict[str, Any] = {}
    for message in log.messages:
        found.setdefault(message.key, message.value)
    found["__errors__"] = log.num_errors()
    return found


def _config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / CONFIG
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def load_run(path: Path) -> RunData:
    """Read one run directory (InputError when it is not one)."""
    if not path.is_dir():
        raise InputError(f"{path} is not a directory; expected a run directory written by `harness run`")
    manifest = RunArtifacts(path).read_manifest()
    return RunData(path, path.name if path.name not in ("", ".") else str(path), manifest,
                   read_timings(path / SAMPLES), _detail(path), _config(path))


def unique_names(runs: list[RunData]) -> list[str]:
    """Short, distinct labels for runs (parent/name when names repeat)."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    labels = [f"{r.path.parent.name}/{r.name}" for r in runs]
    return labels if len(set(labels)) == len(labels) else [f"{i + 1}:{n}" for i, n in enumerate(names)]


def reference_lengths(run: RunData) -> tuple[list[int] | None, str]:
    """Token lengths of the run's reference answers (the run's tokenizer), or None and why not."""
    from harness.dataset import load_references
    from harness.errors import HarnessError
    from harness.tokenizer import load_tokenizer

    dataset = run.config.get("dataset") or {}
    model = run.config.get("model") or {}
    try:
        references = (load_references(dataset.get("path"), run.manifest.benchmark) if run.facts is not None
                      else load_references(dataset.get("path")))
        limit = dataset.get("max_samples")
        references = references[: int(limit)] if limit else references
        tokenizer = load_tokenizer(model.get("tokenizer") or model.get("path"))
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in references]
    except (HarnessError, OSError) as err:
        return None, f"reference lengths unavailable: {err}"
    return lengths, "reference answers, run tokenizer"
