"""The ROUGE scoring pipeline the summarisation benchmarks share: log -> responses -> post-processed texts -> ROUGE.

Each step is one of this package's modules (responses.py, texts.py, rouge.py); a benchmark's scorer adds only
what its reference script prints. ``rouge_means`` is the reference's ``round(np.mean(f) * 100, 4)`` per ROUGE
type (numpy's rounding of a numpy float, as the scripts do), returned as plain floats. ``write_outputs`` writes
accuracy.json (the per-sample scores one per line) and accuracy.txt atomically, never over earlier results unasked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import artifacts
from harness.benchmarks.scoring.responses import Responses, check_dtype, read_responses
from harness.benchmarks.scoring.rouge import ROUGE_TYPES, available_engine, score_rouge
from harness.benchmarks.scoring.sentences import check_splitter
from harness.benchmarks.scoring.texts import prepare_texts
from harness.benchmarks.scoring.verdict import Verdict
from harness.console import Progress
from harness.errors import ConfigError

__all__ = ["ROUGE_BATCH", "AccuracyReport", "Scored", "rouge_means", "score_log", "write_outputs"]

ROUGE_BATCH = 2048


@dataclass(frozen=True)
class AccuracyReport:
    """A scorer's result: the reference's summary, the verdicts against the benchmark's targets and upper limits,
    and the per-sample scores (the benchmark's own record type, in first-occurrence order)."""

    summary: dict[str, float | int]
    benchmark: str
    dtype: str
    splitter: str
    engine: str
    dataset_size: int
    missing_samples: int
    duplicate_entries: int
    verdicts: tuple[Verdict, ...]
    samples: tuple[Any, ...] = field(repr=False)

    @property
    def partial(self) -> bool:
        """True when the log lacks some of the dataset's samples."""
        return self.missing_samples > 0

    @property
    def passed(self) -> bool:
        """Every target met and every value inside its upper limit."""
        return all(v.passed for v in self.verdicts)

    @property
    def warnings(self) -> list[str]:
        """Human-readable warnings (missing samples)."""
        if not self.partial:
            return []
        return [f"the accuracy log holds {self.summary['gen_num']} of the dataset's {self.dataset_size} "
                f"samples ({self.missing_samples} missing); the result is partial"]

    def as_json(self, summary_keys: Sequence[str]) -> dict[str, Any]:
        """accuracy.json content: the summary (these keys), verdicts, settings and per-sample scores."""
        return {
            "summary": {k: self.summary[k] for k in summary_keys},
            "benchmark": self.benchmark,
            "passed": self.passed,
            "partial": self.partial,
            "dataset_size": self.dataset_size,
            "missing_samples": self.missing_samples,
            "duplicate_entries": self.duplicate_entries,
            "dtype": self.dtype,
            "splitter": self.splitter,
            "rouge_engine": self.engine,
            "verdicts": [{"metric": v.metric, "value": v.value, "op": v.op, "limit": v.limit, "passed": v.passed}
                         for v in self.verdicts],
            "warnings": self.warnings,
            "samples": [s.__dict__ for s in self.samples],
        }


@dataclass(frozen=True)
class Scored:
    """The unique responses, their post-processed predictions and references, and per-sample F-measures."""

    responses: Responses
    predictions: list[str]
    references: list[str]
    rouge: dict[str, list[float]]
    engine: str


def score_log(accuracy_log: Path, references: Sequence[str], tokenizer: Any, *, dtype: str, splitter: str,
              engine: str = "auto", workers: int | None = None, progress: bool = False,
              clean_up_spaces: bool = False) -> Scored:
    """First occurrence of each qsl_idx, decoded with skip_special_tokens, stripped, split, ROUGE-scored.

    clean_up_spaces: see harness.benchmarks.scoring.texts (the reference's transformers 4.46 fast decoding).
    """
    check_dtype(dtype)
    check_splitter(splitter)
    engine = available_engine(engine)
    responses = read_responses(Path(accuracy_log), dtype, len(references), _vocab_size(tokenizer))
    targets = [references[q] for q in responses.qsl_idx]
    count = len(responses.qsl_idx)
    with Progress(2 * count, "accuracy: decode+split, rouge", enabled=progress) as bar:
        texts = prepare_texts(tokenizer, responses.tokens, targets, splitter=splitter,
                              python_rouge=engine == "python", workers=workers, on_progress=bar.advance,
                              clean_up_spaces=clean_up_spaces)
        if texts.rouge is not None:
            rouge = texts.rouge
            bar.advance(count)
        else:
            rouge = _rust_rouge(texts.references, texts.predictions, bar)
    return Scored(responses, texts.predictions, texts.references, rouge, engine)


def _vocab_size(tokenizer: Any) -> int | None:
    try:
        return len(tokenizer)
    except TypeError:
        return None


def _rust_rouge(targets: list[str], predictions: list[str], bar: Progress) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {kind: [] for kind in ROUGE_TYPES}
    for start in range(0, len(targets), ROUGE_BATCH):
        end = min(len(targets), start + ROUGE_BATCH)
        batch = score_rouge(targets[start:end], predictions[start:end], engine="rust")
        for kind in ROUGE_TYPES:
            scores[kind].extend(batch[kind])
        bar.advance(end - start)
    return scores


def rouge_means(rouge: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """{rouge type: round(numpy.mean(f) * 100, 4)} as plain floats (numpy's rounding, as the scripts round)."""
    return {kind: float(round(np.mean(rouge[kind]) * 100, 4)) for kind in ROUGE_TYPES}


def write_outputs(out_dir: Path, text: str, data: Mapping[str, Any], *, overwrite: bool = False) -> list[Path]:
    """accuracy.txt = text, accuracy.json = data (its "samples" one per line); never replace them unless overwrite."""
    paths = [Path(out_dir) / artifacts.ACCURACY_TXT, Path(out_dir) / artifacts.ACCURACY_JSON]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} already exists; scoring never replaces earlier results unasked",
                          hint="pass --overwrite, or choose another --output-dir")
    head_data = {k: v for k, v in data.items() if k != "samples"}
    samples = data.get("samples", [])
    head = json.dumps(head_data, indent=2)[:-2]  # without the closing "\n}": the samples follow, one per line
    body = ",\n".join("    " + json.dumps(s) for s in samples)
    artifacts.write_text_atomic(paths[1], f'{head},\n  "samples": [\n{body}\n  ]\n}}\n')
    artifacts.write_text_atomic(paths[0], text)
    return paths
