"""Score an accuracy log exactly as MLCommons' llama2-70b evaluate-accuracy.py; write accuracy.txt/json.

Algorithm (inference@v4.0 language/llama2-70b/evaluate-accuracy.py, mlperf-rules.md §5.2): the first
entry of each qsl_idx wins; buffers are read with the given dtype and every element counts towards
gen_tok_len; the buffers are decoded with skip_special_tokens; predictions and references are
stripped and split into sentences joined by newlines; rouge_score (use_stemmer=True) gives per-sample
F-measures of rouge1, rouge2, rougeL and rougeLsum, reported as round(numpy.mean(f) * 100, 4);
gen_len counts post-processed characters; tokens_per_sample = round(gen_tok_len / gen_num, 1).
Numbers are printed as plain Python floats, so the checker's regexes read them under numpy 2 too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import artifacts
from harness.benchmarks.registry import DEFAULT_BENCHMARK, benchmark_facts
from harness.benchmarks.scoring.responses import Responses, check_dtype, read_responses
from harness.benchmarks.scoring.rouge import ROUGE_TYPES, available_engine, score_rouge
from harness.benchmarks.scoring.sentences import DEFAULT_SPLITTER, check_splitter
from harness.benchmarks.scoring.texts import prepare_texts
from harness.benchmarks.scoring.verdict import Verdict, judge
from harness.console import Progress
from harness.errors import ConfigError

__all__ = ["ROUGE_BATCH", "SUMMARY_KEYS", "AccuracyReport", "SampleScore", "accuracy_text", "report_json",
           "score_accuracy_log", "write_accuracy_outputs"]

SUMMARY_KEYS = (*ROUGE_TYPES, "gen_len", "gen_num", "gen_tok_len", "tokens_per_sample")
ROUGE_BATCH = 2048


@dataclass(frozen=True)
class SampleScore:
    """One scored sample: F-measures in [0, 1], post-processed characters, buffer elements."""

    qsl_idx: int
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815  (the reference's key)
    rougeLsum: float  # noqa: N815
    gen_len: int
    gen_tok_len: int


@dataclass(frozen=True)
class AccuracyReport:
    """The reference's summary, the verdict and the per-sample scores (in first-occurrence order)."""

    summary: dict[str, float | int]
    benchmark: str
    dtype: str
    splitter: str
    engine: str
    dataset_size: int
    missing_samples: int
    duplicate_entries: int
    verdicts: tuple[Verdict, ...]
    samples: tuple[SampleScore, ...] = field(repr=False)

    @property
    def partial(self) -> bool:
        """True when the log lacks some of the dataset's samples."""
        return self.missing_samples > 0

    @property
    def passed(self) -> bool:
        """All targets of the benchmark met and tokens_per_sample inside its window."""
        return all(v.passed for v in self.verdicts)

    @property
    def warnings(self) -> list[str]:
        """Human-readable warnings (missing samples)."""
        if not self.partial:
            return []
        return [f"the accuracy log holds {self.summary['gen_num']} of the dataset's {self.dataset_size} "
                f"samples ({self.missing_samples} missing); the result is partial"]


def score_accuracy_log(accuracy_log: Path, references: Sequence[str], tokenizer: Any, *,
                       dtype: str = "int32", benchmark: str = DEFAULT_BENCHMARK,
                       splitter: str = DEFAULT_SPLITTER, engine: str = "auto",
                       workers: int | None = None, progress: bool = False) -> AccuracyReport:
    """Score mlperf_log_accuracy.json against references[qsl_idx] with the reference algorithm."""
    check_dtype(dtype)
    benchmark_facts(benchmark)
    check_splitter(splitter)
    engine = available_engine(engine)
    responses = read_responses(Path(accuracy_log), dtype, len(references), _vocab_size(tokenizer))
    targets = [references[q] for q in responses.qsl_idx]
    count = len(responses.qsl_idx)
    with Progress(2 * count, "accuracy: decode+split, rouge", enabled=progress) as bar:
        texts = prepare_texts(tokenizer, responses.tokens, targets, splitter=splitter,
                              python_rouge=engine == "python", workers=workers, on_progress=bar.advance)
        rouge = texts.rouge if texts.rouge is not None else _rust_rouge(texts.references, texts.predictions,
                                                                       bar)
        if texts.rouge is not None:
            bar.advance(count)
    summary = _summary(rouge, texts.predictions, responses)
    samples = tuple(
        SampleScore(q, rouge["rouge1"][i], rouge["rouge2"][i], rouge["rougeL"][i], rouge["rougeLsum"][i],
                    len(texts.predictions[i]), len(responses.tokens[i]))
        for i, q in enumerate(responses.qsl_idx)
    )
    return AccuracyReport(summary, benchmark, dtype, splitter, engine, len(references),
                          len(references) - count, responses.duplicates, judge(summary, benchmark), samples)


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


def _summary(rouge: dict[str, list[float]], predictions: list[str],
             responses: Responses) -> dict[str, float | int]:
    # round(numpy.float64, 4) rounds as numpy does; float() makes the printed form plain.
    summary: dict[str, float | int] = {k: float(round(np.mean(rouge[k]) * 100, 4)) for k in ROUGE_TYPES}
    gen_num = len(predictions)
    gen_tok_len = responses.gen_tok_len
    summary["gen_len"] = int(sum(len(p) for p in predictions))
    summary["gen_num"] = gen_num
    summary["gen_tok_len"] = gen_tok_len
    summary["tokens_per_sample"] = round(gen_tok_len / gen_num, 1)
    return summary


def accuracy_text(report: AccuracyReport) -> str:
    """accuracy.txt: what the reference script prints, with plain numbers."""
    return "\nResults\n\n" + str({k: report.summary[k] for k in SUMMARY_KEYS}) + "\n"


def report_json(report: AccuracyReport) -> dict[str, Any]:
    """accuracy.json content: summary, verdicts, settings and per-sample scores."""
    return {
        "summary": {k: report.summary[k] for k in SUMMARY_KEYS},
        "benchmark": report.benchmark,
        "passed": report.passed,
        "partial": report.partial,
        "dataset_size": report.dataset_size,
        "missing_samples": report.missing_samples,
        "duplicate_entries": report.duplicate_entries,
        "dtype": report.dtype,
        "splitter": report.splitter,
        "rouge_engine": report.engine,
        "verdicts": [{"metric": v.metric, "value": v.value, "op": v.op, "limit": v.limit, "passed": v.passed}
                     for v in report.verdicts],
        "warnings": report.warnings,
        "samples": [s.__dict__ for s in report.samples],
    }


def write_accuracy_outputs(report: AccuracyReport, out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Write accuracy.txt and accuracy.json atomically; refuse to replace them unless overwrite."""
    paths = [Path(out_dir) / artifacts.ACCURACY_TXT, Path(out_dir) / artifacts.ACCURACY_JSON]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} already exists; scoring never replaces earlier results unasked",
                          hint="pass --overwrite, or choose another --output-dir")
    data = report_json(report)
    samples = data.pop("samples")
    head = json.dumps(data, indent=2)[:-2]  # without the closing "\n}": the samples follow, one per line
    body = ",\n".join("    " + json.dumps(s) for s in samples)
    artifacts.write_text_atomic(paths[1], f'{head},\n  "samples": [\n{body}\n  ]\n}}\n')
    artifacts.write_text_atomic(paths[0], accuracy_text(report))
    return paths
