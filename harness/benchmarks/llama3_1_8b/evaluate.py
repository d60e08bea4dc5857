"""Score an accuracy log exactly as MLCommons' llama3.1-8b evaluation.py; write accuracy.txt/json.

Algorithm (inference language/llama3.1-8b/evaluation.py, shared/docs/field-2026.md §4.1): the first entry of
each qsl_idx wins; buffers are read with the given dtype (int32 as the reference SUT writes them, or int64, the
script's default); they are decoded with skip_special_tokens; predictions and references are stripped and split
into sentences joined by newlines; rouge_score (use_stemmer=True, no aggregation) gives per-sample F-measures of
rouge1, rouge2, rougeL and rougeLsum, reported as ``f"{round(numpy.mean(f) * 100, 4)}"``; gen_len is the sum of
the post-processed predictions' characters and gen_num their count. A fast tokenizer whose config sets
clean_up_tokenization_spaces (Llama 3.1's) decodes with that clean-up, as the pinned transformers 4.46 does.
accuracy.txt is the script's print with gen_len as a plain int (the script prints ``np.int64(...)`` under
numpy 2, which the checker's GEN_LEN regex does not read); the ROUGE values stay quoted strings as the script
prints them, which the checker reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.benchmarks.registry import benchmark_facts
from harness.benchmarks.scoring.pipeline import AccuracyReport, rouge_means, score_log, write_outputs
from harness.benchmarks.scoring.rouge import ROUGE_TYPES
from harness.benchmarks.scoring.sentences import DEFAULT_SPLITTER
from harness.benchmarks.scoring.texts import fast_clean_up
from harness.benchmarks.scoring.verdict import judge
from harness.errors import ConfigError

__all__ = ["BENCHMARK", "DTYPES", "SUMMARY_KEYS", "AccuracyReport", "SampleScore", "accuracy_text", "printed",
           "report_json", "score_accuracy_log", "write_accuracy_outputs"]

BENCHMARK = "llama3.1-8b"
DTYPES = ("int32", "int64")  # the script's --dtype choices
SUMMARY_KEYS = (*ROUGE_TYPES, "gen_len", "gen_num")


@dataclass(frozen=True)
class SampleScore:
    """One scored sample: F-measures in [0, 1] and post-processed characters."""

    qsl_idx: int
    rouge1: float
    rouge2: float
    rougeL: float  # noqa: N815  (the reference's key)
    rougeLsum: float  # noqa: N815
    gen_len: int


def score_accuracy_log(accuracy_log: Path, references: Sequence[str], tokenizer: Any, *,
                       dtype: str = "int32", benchmark: str = BENCHMARK,
                       splitter: str = DEFAULT_SPLITTER, engine: str = "auto",
                       workers: int | None = None, progress: bool = False) -> AccuracyReport:
    """Score mlperf_log_accuracy.json against references[qsl_idx] with the reference algorithm."""
    if dtype not in DTYPES:
        raise ConfigError(f"response dtype {dtype!r} is not one the llama3.1-8b reference reads; expected int32 "
                          "or int64", hint="harness runs write int32 buffers; the reference script's default is int64")
    benchmark_facts(benchmark)
    scored = score_log(Path(accuracy_log), references, tokenizer, dtype=dtype, splitter=splitter, engine=engine,
                       workers=workers, progress=progress, clean_up_spaces=fast_clean_up(tokenizer))
    summary: dict[str, float | int] = {**rouge_means(scored.rouge),
                                       "gen_len": sum(len(p) for p in scored.predictions),
                                       "gen_num": len(scored.predictions)}
    rouge = scored.rouge
    samples = tuple(
        SampleScore(q, rouge["rouge1"][i], rouge["rouge2"][i], rouge["rougeL"][i], rouge["rougeLsum"][i],
                    len(scored.predictions[i]))
        for i, q in enumerate(scored.responses.qsl_idx)
    )
    count = len(samples)
    return AccuracyReport(summary, benchmark, dtype, splitter, scored.engine, len(references),
                          len(references) - count, scored.responses.duplicates, judge(summary, benchmark), samples)


def printed(summary: dict[str, float | int]) -> dict[str, str | int]:
    """The dict the reference prints: ROUGE as quoted strings, gen_len and gen_num as plain ints."""
    return {**{k: f"{summary[k]}" for k in ROUGE_TYPES}, "gen_len": int(summary["gen_len"]),
            "gen_num": int(summary["gen_num"])}


def accuracy_text(report: AccuracyReport) -> str:
    """accuracy.txt: what the reference script prints, with gen_len as a plain int."""
    return "\nResults\n\n" + str(printed(report.summary)) + "\n"


def report_json(report: AccuracyReport) -> dict[str, Any]:
    """accuracy.json content: summary, verdicts, settings and per-sample scores."""
    return report.as_json(SUMMARY_KEYS)


def write_accuracy_outputs(report: AccuracyReport, out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Write accuracy.txt and accuracy.json atomically; refuse to replace them unless overwrite."""
    return write_outputs(Path(out_dir), accuracy_text(report), report_json(report), overwrite=overwrite)
