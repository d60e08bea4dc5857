"""The QSL's data: the benchmark's MLCommons dataset (its folder's loader) or its embedded smoke set."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from harness.benchmarks.llama2_70b.dataset import REQUIRED_COLUMNS, read_openorca_pickle
from harness.benchmarks.registry import DEFAULT_BENCHMARK, family_module
from harness.config import RunConfig
from harness.types import Sample, TestMode

__all__ = ["REQUIRED_COLUMNS", "SMOKE_FILE", "SMOKE_NAME", "Dataset", "SmokeEntry", "SmokeItem", "dataset_file",
           "load_dataset", "load_references", "oracle_texts", "read_openorca_pickle", "run_references",
           "smoke_entries", "smoke_file", "smoke_sha256", "token_length_stats"]

SMOKE_FILE = "data/smoke_dataset.json"  # Llama 2 70B's smoke set (OpenOrca-style questions)
SMOKE_NAME = "embedded smoke set"


class SmokeItem(Protocol):
    """One entry of a benchmark's smoke set: the prompt as text (system turn and user turn) and the reference."""

    @property
    def id(self) -> str: ...

    @property
    def system_prompt(self) -> str: ...

    @property
    def question(self) -> str: ...

    @property
    def output(self) -> str: ...


@dataclass(frozen=True)
class SmokeEntry:
    """One question/answer pair of Llama 2 70B's embedded smoke set."""

    id: str
    system_prompt: str
    question: str
    output: str


def _llama2_smoke_entries() -> list[SmokeEntry]:
    raw = json.loads(resources.files("harness").joinpath(SMOKE_FILE).read_text(encoding="utf-8"))
    return [SmokeEntry(e["id"], e.get("system_prompt", ""), e["question"], e["output"]) for e in raw]


def smoke_file(benchmark: str = DEFAULT_BENCHMARK) -> str:
    """The benchmark's smoke set inside the harness package: its dataset module's SMOKE_FILE, else Llama 2's."""
    return str(getattr(family_module(benchmark, "dataset"), "SMOKE_FILE", SMOKE_FILE))


def smoke_entries(benchmark: str = DEFAULT_BENCHMARK) -> Sequence[SmokeItem]:
    """The benchmark's embedded smoke set (its dataset module's `smoke_entries`, else Llama 2's)."""
    module = family_module(benchmark, "dataset")
    if getattr(module, "SMOKE_FILE", None) is None:
        return _llama2_smoke_entries()
    entries: Sequence[SmokeItem] = module.smoke_entries()
    return entries


def _smoke_chat_template(benchmark: str) -> bool:
    """Whether the benchmark's reference prompts are chat-formatted (Llama 2's are; Llama 3.1 8B's are plain)."""
    return bool(getattr(family_module(benchmark, "dataset"), "SMOKE_CHAT_TEMPLATE", True))


def _smoke_bytes(benchmark: str = DEFAULT_BENCHMARK) -> bytes:
    return resources.files("harness").joinpath(smoke_file(benchmark)).read_bytes()


def smoke_sha256(benchmark: str = DEFAULT_BENCHMARK) -> str:
    """sha256 of the benchmark's smoke set file (the run manifest's dataset_sha256 of a smoke run)."""
    return hashlib.sha256(_smoke_bytes(benchmark)).hexdigest()


@dataclass(frozen=True)
class Dataset:
    """Samples in qsl_idx order plus their reference answers."""

    samples: list[Sample]
    references: list[Any]  # what the benchmark's scorer compares with: text, or gpt-oss-120b's (dataset, answer)
    name: str
    source: str
    sha256: str

    def __len__(self) -> int:
        return len(self.samples)


def _chat_prompt_ids(tokenizer: Any, entry: SmokeItem, chat_template: bool) -> list[int]:
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
    """Load the configured QSL; the benchmark's smoke set is tokenized with the model's tokenizer (and its chat
    template where the benchmark's reference prompts are chat-formatted and dataset.chat_template is on)."""
    max_samples = config.dataset.max_samples
    if config.dataset.path is None:
        entries = _smoke_for_run(config)
        chat = config.dataset.chat_template and _smoke_chat_template(config.benchmark)
        samples = [Sample(i, tuple(_chat_prompt_ids(tokenizer, e, chat)), e.output) for i, e in enumerate(entries)]
        return Dataset(samples, _smoke_references(config.benchmark, entries), SMOKE_NAME, SMOKE_NAME,
                       smoke_sha256(config.benchmark))
    loader = family_module(config.benchmark, "dataset")
    path = dataset_file(config)
    prompts, outputs = loader.read_rows(path, max_samples)
    samples = [Sample(i, ids, ref) for i, (ids, ref) in enumerate(zip(prompts, outputs, strict=True))]
    return Dataset(samples, outputs, path.name, str(path), hashlib.sha256(loader.dataset_bytes(path)).hexdigest())


def _smoke_references(benchmark: str, entries: Sequence[SmokeItem]) -> list[Any]:
    """The smoke set's references: the loader's `smoke_references` where it has one (gpt-oss-120b), else texts."""
    references = getattr(family_module(benchmark, "dataset"), "smoke_references", None)
    return list(references(entries)) if references is not None else [e.output for e in entries]


def dataset_file(config: RunConfig) -> Path:
    """The dataset file the run reads: dataset.path, or in a benchmark's download folder the set of the run's
    purpose (gpt-oss-120b: performance, accuracy or TEST07's set)."""
    path = Path(str(config.dataset.path))
    resolve = getattr(family_module(config.benchmark, "dataset"), "resolve_path", None)
    if resolve is None:
        return path
    found: Path = resolve(path, accuracy=config.mode is TestMode.ACCURACY, compliance_test=config.compliance_test)
    return found


def _smoke_for_run(config: RunConfig) -> list[SmokeItem]:
    """The smoke entries a run uses: the loader's `smoke_for_test` subset for a compliance test with a set of its
    own (gpt-oss-120b's TEST07: the GPQA questions), then the first dataset.max_samples."""
    every = list(smoke_entries(config.benchmark))
    subset = getattr(family_module(config.benchmark, "dataset"), "smoke_for_test", None)
    if subset is not None and config.compliance_test is not None:
        every = list(subset(every, config.compliance_test))
    return every[: _limit(len(every), config.dataset.max_samples)]


def run_references(config: RunConfig) -> list[Any]:
    """The references of the run's QSL in qsl_idx order (smoke set or the run's dataset file), what its scorer
    compares with."""
    if config.dataset.path is None:
        return _smoke_references(config.benchmark, _smoke_for_run(config))
    loader = family_module(config.benchmark, "dataset")
    return list(loader.read_rows(dataset_file(config), config.dataset.max_samples)[1])


def oracle_texts(config: RunConfig) -> list[str]:
    """The answers that score perfectly, by qsl_idx (the fake backend's oracle): the references themselves, or the
    loader's `oracle_text` of each (gpt-oss-120b: an answer its extraction reads as the ground truth)."""
    references = run_references(config)
    oracle = getattr(family_module(config.benchmark, "dataset"), "oracle_text", None)
    return [oracle(r) for r in references] if oracle is not None else [str(r) for r in references]


def load_references(path: str | None, benchmark: str = DEFAULT_BENCHMARK) -> list[Any]:
    """Reference answers by qsl_idx, without a tokenizer (None = the benchmark's embedded smoke set); a folder is
    resolved as for an accuracy run."""
    if path is None:
        return _smoke_references(benchmark, smoke_entries(benchmark))
    loader = family_module(benchmark, "dataset")
    resolve = getattr(loader, "resolve_path", None)
    file = resolve(Path(path), accuracy=True) if resolve is not None else Path(path)
    return list(loader.read_rows(file, None)[1])


def token_length_stats(lengths: list[int]) -> dict[str, float]:
    """Count, mean and percentiles of token lengths."""
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)

    def pct(p: float) -> float:
        return float(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))])

    return {"count": len(ordered), "mean": sum(ordered) / len(ordered), "min": float(ordered[0]),
            "p50": pct(50), "p90": pct(90), "p99": pct(99), "max": float(ordered[-1])}
