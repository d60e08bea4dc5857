"""Score a gpt-oss-120b accuracy log exactly as MLCommons' eval_mlperf_accuracy.py; write accuracy.txt/json.

Algorithm (inference language/gpt-oss-120b/eval_mlperf_accuracy.py with eval_accuracy.py, HEAD;
shared/docs/field-2026.md §4.2):

1. Every log entry counts, duplicates of a qsl_idx included (no de-duplication). ``data`` is hex of little-endian
   int32 token ids (the script's only format); each buffer is decoded with ``tokenizer.decode(ids,
   skip_special_tokens=False)``, so the harmony markers stay in the text.
2. The row's ``dataset`` (lower-cased) picks the evaluator (extraction.py); entries are grouped by that name and the
   groups processed in sorted order.
3. AIME / GPQA: extraction and comparison as extraction.py; LiveCodeBench: the last code block, run against the
   problem's public and private tests (livecodebench.py, in the sandbox; a load failure is an InputError, never 0).
4. Per dataset: correct and total; score = sum(correct / repeats) / sum(total / repeats) x 100 with repeats
   aime25 8, gpqa_diamond 5, livecodebench_v6 3 (1 for any other name), summed in sorted dataset order as the
   script sums them.

accuracy.txt is the script's standard output from its results banner to the line ``'exact_match': NN.NNN`` that the
submission checker reads (ACC_PATTERN ``.*'exact_match':\\s([\\d.]+).*``); the script prints no token count, so
``tokens_per_sample`` (mean token ids per log entry, for the checker's upper limit) is in accuracy.json only.

Deliberate differences, all on inputs the script cannot score either: a qsl_idx outside the dataset is an InputError
(the script logs a warning and skips the entry); a buffer whose length is not a multiple of 4, an id outside the
tokenizer's vocabulary, a dataset name no evaluator handles, and math500 rows are InputErrors (the script crashes);
a LiveCodeBench answer whose question_id is unknown is an InputError (the script scores it 0); and the LiveCodeBench
evaluation has no overall 1,200 s limit (past it the script crashes with a TimeoutError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.benchmarks.gpt_oss_120b import livecodebench as lcb
from harness.benchmarks.gpt_oss_120b.extraction import (
    LIVECODEBENCH,
    Reference,
    evaluator_for,
    judge_answer,
    normalise_dataset,
    parse_code,
)
from harness.benchmarks.gpt_oss_120b.facts import REPEATS
from harness.benchmarks.registry import benchmark_facts
from harness.benchmarks.scoring.pipeline import AccuracyReport, write_outputs
from harness.benchmarks.scoring.verdict import judge
from harness.console import Progress
from harness.errors import ConfigError, InputError
from harness.logs import parse_accuracy_log

__all__ = ["BENCHMARK", "DTYPES", "SUMMARY_KEYS", "DatasetScore", "GptOssReport", "Reference", "SampleScore",
           "accuracy_text", "report_json", "score_accuracy_log", "write_accuracy_outputs"]

BENCHMARK = "gpt-oss-120b"
DTYPES = ("int32",)  # the script unpacks '<{n}i' and nothing else
SUMMARY_KEYS = ("exact_match", "tokens_per_sample", "samples", "correct", "overall_accuracy", "final_score",
                "max_score")
_RULE = "=" * 80
_THIN = "-" * 80


@dataclass(frozen=True)
class SampleScore:
    """One log entry: its dataset, verdict, extracted answer (code cut to 200 characters, as the script records it),
    token count and the evaluation detail."""

    seq_id: int
    qsl_idx: int
    dataset: str
    correct: bool
    extracted: str | None
    tokens: int
    detail: str


@dataclass(frozen=True)
class DatasetScore:
    """One dataset's counts as the script prints them."""

    name: str
    correct: int
    total: int
    repeats: int


@dataclass(frozen=True)
class GptOssReport(AccuracyReport):
    """AccuracyReport with what the script prints per dataset and where LiveCodeBench came from."""

    datasets: tuple[DatasetScore, ...] = ()
    livecodebench: str = ""
    entries: int = 0
    test_timeout: int = lcb.TEST_TIMEOUT

    @property
    def warnings(self) -> list[str]:
        """A log that lacks some of the dataset's samples (the result is partial)."""
        if not self.partial:
            return []
        return [f"the accuracy log answers {self.dataset_size - self.missing_samples} of the dataset's "
                f"{self.dataset_size} samples ({self.missing_samples} missing); the result is partial"]


def score_accuracy_log(accuracy_log: Path, references: Sequence[Reference], tokenizer: Any, *,
                       dtype: str = "int32", benchmark: str = BENCHMARK, livecodebench: Path | None = None,
                       workers: int | None = None, progress: bool = False,
                       lcb_runners: tuple[int, Any] | None = None, lcb_timeout: int = lcb.TEST_TIMEOUT,
                       **_ignored: Any) -> GptOssReport:
    """Score mlperf_log_accuracy.json against references[qsl_idx] as eval_mlperf_accuracy.py does.

    livecodebench: the local code_generation_lite copy (folder with test.jsonl ... test6.jsonl, or one .jsonl);
    None is allowed when the log has no LiveCodeBench answers or only smoke ones (ids ``smoke-...``: the embedded
    harness/data/smoke_livecodebench.jsonl). workers: parallel sandboxes (default one per usable core).
    lcb_runners / lcb_timeout: for tests and benchmarks (another runner than the sandbox; a shorter per-test limit).
    """
    if dtype not in DTYPES:
        raise ConfigError(f"response dtype {dtype!r} is not one the gpt-oss-120b reference reads; expected int32",
                          hint="eval_mlperf_accuracy.py unpacks little-endian int32 token ids; harness runs write "
                               "int32")
    benchmark_facts(benchmark)
    path = Path(accuracy_log)
    entries = parse_accuracy_log(path)
    if not entries:
        raise InputError(f"{path} holds no entries (an empty JSON list); nothing to score",
                         hint="score the mlperf_log_accuracy.json of an accuracy-mode run")
    vocab = _vocab_size(tokenizer)
    names, kinds = [], []
    for position, entry in enumerate(entries):
        if not 0 <= entry.qsl_idx < len(references):
            raise InputError(f"{path}: entry {position} has qsl_idx {entry.qsl_idx}, which is not in the dataset "
                             f"(samples 0..{len(references) - 1})",
                             hint="score the log against the accuracy dataset the run used (--dataset)")
        reference = references[entry.qsl_idx]
        names.append(normalise_dataset(reference.dataset))
        kinds.append(evaluator_for(reference.dataset))
    lcb_ids = {references[e.qsl_idx].ground_truth for e, k in zip(entries, kinds, strict=True) if k == LIVECODEBENCH}
    problems = lcb.load_problems(livecodebench, lcb_ids) if lcb_ids else {}
    source = "" if not lcb_ids else str(livecodebench) if livecodebench is not None else str(lcb.SMOKE_FILE)

    lcb_positions = [i for i, k in enumerate(kinds) if k == LIVECODEBENCH]
    with Progress(len(entries) + len(lcb_positions), "accuracy: decode+extract, livecodebench",
                  enabled=progress) as bar:
        tokens = [_token_ids(entry.data, f"{path}: entry {i} (qsl_idx {entry.qsl_idx})", vocab)
                  for i, entry in enumerate(entries)]
        verdicts: list[tuple[bool, str | None, str]] = [(False, None, "")] * len(entries)
        codes: list[str | None] = [None] * len(entries)
        for i, (entry, kind) in enumerate(zip(entries, kinds, strict=True)):
            text = tokenizer.decode(tokens[i], skip_special_tokens=False)
            truth = references[entry.qsl_idx].ground_truth
            if kind == LIVECODEBENCH:
                codes[i] = parse_code(text)
            else:
                verdicts[i] = _judged(kind, text, truth)
            bar.advance(1, len(tokens[i]))
        items = [(codes[i], references[entries[i].qsl_idx].ground_truth) for i in lcb_positions]
        results = lcb.evaluate_codes(items, problems, workers=workers, runners=lcb_runners, timeout=lcb_timeout,
                                     on_done=lambda: bar.advance(1)) if items else []
        for i, result in zip(lcb_positions, results, strict=True):
            code = codes[i]
            verdicts[i] = (result.passed, code[:200] if code is not None else None, result.detail)

    samples = tuple(SampleScore(e.seq_id, e.qsl_idx, names[i], verdicts[i][0], verdicts[i][1], len(tokens[i]),
                                verdicts[i][2]) for i, e in enumerate(entries))
    datasets = tuple(
        DatasetScore(name, sum(s.correct for s in samples if s.dataset == name),
                     sum(1 for s in samples if s.dataset == name), REPEATS.get(name, 1))
        for name in sorted(set(names)))
    summary = _summary(datasets, sum(len(t) for t in tokens) / len(tokens))
    seen = len({e.qsl_idx for e in entries})
    return GptOssReport(summary, benchmark, dtype, "-", "sandbox" if lcb_ids else "none", len(references),
                        len(references) - seen, len(entries) - seen, judge(summary, benchmark), samples,
                        datasets=datasets, livecodebench=source, entries=len(entries),
                        test_timeout=lcb_timeout)


def _judged(kind: str, text: str, truth: str) -> tuple[bool, str | None, str]:
    correct, extracted = judge_answer(kind, text, truth)
    if extracted is None:
        return False, None, "No answer extracted from model output"
    detail = "Correct" if correct else f"Incorrect (extracted: {extracted}, ground_truth: {truth})"
    return correct, str(extracted), detail


def _vocab_size(tokenizer: Any) -> int | None:
    try:
        return len(tokenizer)
    except TypeError:
        return None


def _token_ids(data: str, where: str, vocab: int | None) -> list[int]:
    try:
        raw = bytes.fromhex(data)
    except ValueError as err:
        raise InputError(f"{where}: data is not hexadecimal ({err}); seen {data[:40]!r}",
                         hint="the log is corrupt; rerun the accuracy test") from None
    if len(raw) % 4:
        raise InputError(f"{where}: {len(raw)} bytes is not a multiple of 4 (int32 token ids)",
                         hint="gpt-oss-120b logs hold little-endian int32 token ids")
    values = np.frombuffer(raw, "<i4")
    if values.size and vocab is not None and (values.min() < 0 or values.max() >= vocab):
        bad = int(values.min()) if values.min() < 0 else int(values.max())
        raise InputError(f"{where}: token id {bad} is outside the tokenizer's vocabulary 0..{vocab - 1}",
                         hint="pass the --tokenizer the run used")
    return list(values.tolist())


def _scores(datasets: Sequence[DatasetScore]) -> tuple[float, float, float]:
    """(final_score, max_score, percentage), summed in the script's order."""
    final_score = 0.0
    max_score = 0.0
    for d in datasets:
        final_score += d.correct / d.repeats
        max_score += d.total / d.repeats
    return final_score, max_score, (final_score / max_score * 100) if max_score > 0 else 0.0


def _summary(datasets: Sequence[DatasetScore], tokens_per_sample: float) -> dict[str, float | int]:
    final_score, max_score, percentage = _scores(datasets)
    total = sum(d.total for d in datasets)
    correct = sum(d.correct for d in datasets)
    summary: dict[str, float | int] = {
        "exact_match": float(f"{percentage:.3f}"),  # as printed: the checker reads this number
        "tokens_per_sample": tokens_per_sample,
        "samples": total,
        "correct": correct,
        "overall_accuracy": (correct / total * 100) if total > 0 else 0.0,
        "final_score": final_score,
        "max_score": max_score,
    }
    for d in datasets:
        summary[d.name] = d.correct / d.total * 100
        summary[f"{d.name}_correct"] = d.correct
        summary[f"{d.name}_total"] = d.total
    return summary


def accuracy_text(report: GptOssReport) -> str:
    """accuracy.txt: the script's standard output (results banner, per-dataset table, final score, checker line)."""
    datasets = report.datasets
    final_score, max_score, percentage = _scores(datasets)
    total = sum(d.total for d in datasets)
    correct = sum(d.correct for d in datasets)
    overall = (correct / total * 100) if total > 0 else 0.0
    lines = ["", _RULE, "MLPerf Accuracy Evaluation Results", _RULE, f"Total samples evaluated: {total}",
             f"Overall raw accuracy: {overall:.2f}% ({correct}/{total})", _RULE, "", "Per-Dataset Breakdown:", _THIN,
             f"{'Dataset':25s} {'Correct':>8s} {'Total':>8s} {'Repeats':>8s} {'Score':>10s} {'Accuracy':>10s}",
             _THIN]
    for d in datasets:
        if d.total > 0:
            lines.append(f"{d.name:25s} {d.correct:8d} {d.total:8d} {d.repeats:8d} {d.correct / d.repeats:10.2f} "
                         f"{d.correct / d.total * 100:9.2f}%")
    lines += [_RULE, "", "Final Score Calculation:", _THIN,
              f"Formula: {' + '.join(f'{d.name}/{d.repeats}' for d in datasets)}",
              f"Score:   = {' + '.join(f'{d.correct}/{d.repeats}' for d in datasets)}",
              f"         = {' + '.join(f'{d.correct / d.repeats:.2f}' for d in datasets)}",
              f"         = {final_score:.2f}",
              f"Max:     = {' + '.join(f'{d.total}/{d.repeats}' for d in datasets)}",
              f"         = {max_score:.2f}",
              "", f"FINAL SCORE: {percentage:.2f}% ({final_score:.2f}/{max_score:.2f})", _RULE,
              "", "", "Printing for submission_checker:", "", f"'exact_match': {percentage:.3f}"]
    return "\n".join(lines) + "\n"


def report_json(report: GptOssReport) -> dict[str, Any]:
    """accuracy.json content: summary (with per-dataset scores), verdicts, settings and per-sample records."""
    data = report.as_json([*SUMMARY_KEYS, *(k for d in report.datasets
                                            for k in (d.name, f"{d.name}_correct", f"{d.name}_total"))])
    data.pop("splitter", None)
    data.pop("rouge_engine", None)
    data["entries"] = report.entries
    data["datasets"] = [d.__dict__ for d in report.datasets]
    data["livecodebench"] = {"source": report.livecodebench, "executor": report.engine,
                             "test_timeout_s": report.test_timeout}
    samples = data.pop("samples")
    data["samples"] = samples  # last: write_outputs puts one per line
    return data


def write_accuracy_outputs(report: GptOssReport, out_dir: Path, *, overwrite: bool = False) -> list[Path]:
    """Write accuracy.txt and accuracy.json atomically; refuse to replace them unless overwrite."""
    return write_outputs(Path(out_dir), accuracy_text(report), report_json(report), overwrite=overwrite)
