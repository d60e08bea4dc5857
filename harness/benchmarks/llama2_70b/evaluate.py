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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.benchmarks.registry import DEFAULT_BENCHMARK, benchmark_facts
from harness.benchmarks.scoring.pipeline import (
    ROUGE_BATCH,
    AccuracyReport,
    rouge_means,
    score_log,
    write_outputs,
)
from harness.benchmarks.scoring.responses import Responses
from harness.benchmarks.scoring.rouge import ROUGE_TYPES
from harness.benchmarks.scoring.sentences import DEFAULT_SPLITTER
from harness.benchmarks.scoring.verdict import judge

__all__ = ["ROUGE_BATCH", "SUMMARY_KEYS", "AccuracyReport", "SampleScore", "accuracy_text", "report_json",
           "score_accuracy_log", "write_accuracy_outputs"]

SUMMARY_KEYS = (*ROUGE_TYPES, "gen_len", "gen_num", "gen_tok_len", "tokens_per_sample")


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


def score_accuracy_log(accuracy_log: Path, references: Sequence[str], tokenizer: Any, *,
                       dtype: str = "int32", benchmark: str = DEFAULT_BENCHMARK,
                       splitter: str = DEFAULT_SPLITTER, engine: str = "auto",
                       workers: int | None = None, progress: bool = False) -> AccuracyReport:
    """Score mlperf_log_accuracy.json against references[qsl_idx] with the reference algorithm."""
    benchmark_facts(benchmark)
    scored = score_log(accuracy_log, references, tokenizer, dtype=dtype, splitter=splitter, engine=engine,
                       workers=workers, progress=progress)
    rouge, predictions, responses = scored.rouge, scored.predictions, scored.responses
    summary = _summary(rouge, predictions, responses)
    samples = tuple(
        SampleScore(q, rouge["rouge1"][i], rouge["rouge2"][i], rouge["rougeL"][i], rouge["rougeLsum"][i],
                    len(predictions[i]), len(responses.tokens[i]))
        for i, q in enumerate(responses.qsl_idx)
    )
    return AccuracyReport(summary, benchmark, dtype, splitter, scored.engine, len(references),
                          len(references) - len(responses.qsl_idx), responses.duplicates, judge(summary, benchmark),
                          samples)


def _summary(rouge: dict[str, list[float]], predictions: list[str],
             responses: Responses) -> dict[str, float | int]:
    summary: dict[str, float | int] = dict(rouge_means(rouge))
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
    return report.as_json(SUMMARY_KEYS)


def write_accuracy_outputs(report: AccuracyReport, out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Write accuracy.txt and accuracy.json atomically; refuse to replace them unless overwrite."""
    return write_outputs(out_dir, accuracy_text(report), report_json(report), overwrite=overwrite)
