"""The QSL's data: the benchmark's MLCommons dataset (its folder's loader) or the embedded smoke set."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.benchmarks.llama2_70b.dataset import REQUIRED_COLUMNS, read_openorca_pickle
from harness.benchmarks.registry import DEFAULT_BENCHMARK, family_module
from harness.config import RunConfig
from harness.types import Sample

__all__ = ["REQUIRED_COLUMNS", "SMOKE_FILE", "SMOKE_NAME", "Dataset", "SmokeEntry", "load_dataset", "load_references",
           "read_openorca_pickle", "smoke_entries", "token_length_stats"]

SMOKE_FILE = "data/smoke_dataset.json"
SMOKE_NAME = "embedded smoke set"


@dataclass(frozen=True)
class SmokeEntry:
    """One question/answer pair of the embedded smoke set."""

    id: str
    system_prompt: str
    question: str
    output: str


def smoke_entries() -> list[SmokeEntry]:
    """The embedded smoke set shipped inside the package."""
    raw = json.loads(resources.files("harness").joinpath(SMOKE_FILE).read_text(encoding="utf-8"))
    return [SmokeEntry(e["id"], e.get("system_prompt", ""), e["question"], e["output"]) for e in raw]


def _smoke_bytes() -> bytes:
    return resources.files("harness").joinpath(SMOKE_FILE).read_bytes()


@dataclass(frozen=True)
class Dataset:
    """Samples in qsl_idx order plus their reference answers."""

    samples: list[Sample]
    references: list[str]
    name: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.samples)


def _chat_prompt_ids(tokenizer: Any, entry: SmokeEntry, chat_template: bool) -> list[int]:
    if chat_template and getattr(tokenizer, "chat_template", None):
        messages = ([{"role": "system", "content": entry.system_prompt}] if entry.system_prompt else [])
        messages.append({"role": "user", "content": entry.question})
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return [int(i) for i in ids]
    text = f"{entry.system_prompt}\n\n{entry.question}" if entry.system_prompt else entry.question
    return [int(i) for i in tokenizer(text)["input_ids"]]


def _limit(count: int, max_samples: int | None) -> int:
    return count if max_samples is None else min(count, max_samples)


def load_dataset(config: RunConfig, tokenizer: Any) -> Dataset:
    """Load the configured QSL; the smoke set is tokenized with the model's tokenizer and template."""
    max_samples = config.dataset.max_samples
    if config.dataset.path is None:
        entries = smoke_entries()[: _limit(len(smoke_entries()), max_samples)]
        samples = [
            Sample(i, tuple(_chat_prompt_ids(tokenizer, e, config.dataset.chat_template)), e.output)
            for i, e in enumerate(entries)
        ]
        return Dataset(samples, [e.output for e in entries], SMOKE_NAME, SMOKE_NAME,
                       hashlib.sha256(_smoke_bytes()).hexdigest())
    path = Path(config.dataset.path)
    loader = family_module(config.benchmark, "dataset")
    prompts, outputs = loader.read_rows(path, max_samples)
    samples = [Sample(i, ids, ref) for i, (ids, ref) in enumerate(zip(prompts, outputs, strict=True))]
    return Dataset(samples, outputs, path.name, str(path), hashlib.sha256(loader.dataset_bytes(path)).hexdigest())


def load_references(path: str | None, benchmark: str = DEFAULT_BENCHMARK) -> list[str]:
    """Reference answers by qsl_idx, without a tokenizer (None = the embedded smoke set)."""
    if path is None:
        return [e.output for e in smoke_entries()]
    return list(family_module(benchmark, "dataset").read_rows(Path(path), None)[1])


def token_length_stats(lengths: list[int]) -> dict[str, float]:
    """Count, mean and percentiles of token lengths."""
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> float:
        return float(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))])

    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "min": float(ordered[0]),
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": float(ordered[-1])}
