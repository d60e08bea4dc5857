"""`harness evaluate`: score an mlperf_log_accuracy.json like the MLCommons reference, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.benchmarks.registry import DEFAULT_BENCHMARK, family_module
from harness.benchmarks.scoring.verdict import verdict_checks
from harness.cli._app import app
from harness.console import checks_table, stderr, stdout
from harness.dataset import load_references
from harness.errors import CheckFailed, ConfigError
from harness.safe_paths import os_errors
from harness.tokenizer import load_tokenizer


@app.command("evaluate")
def evaluate_command(
    accuracy_log: Annotated[Path, typer.Option(help="LoadGen's mlperf_log_accuracy.json")],
    dataset: Annotated[str | None, typer.Option(help="the benchmark's dataset file (OpenOrca pickle, cnn_eval.json, "
                                                "gpt-oss acc_eval_inputs.parquet or its folder); omit: smoke "
                                                "set")] = None,
    tokenizer: Annotated[str | None, typer.Option(help="checkpoint dir (omit: embedded SmolLM2)")] = None,
    dtype: Annotated[str, typer.Option(help="response buffer dtype: int32, int64 or float32")] = "int32",
    benchmark: Annotated[str, typer.Option(help="the benchmark whose targets judge the log")] = DEFAULT_BENCHMARK,
    splitter: Annotated[str, typer.Option(help="nltk-3.8 (reference pin) or nltk-3.10")] = "nltk-3.8",
    output_dir: Annotated[Path | None, typer.Option(help="where accuracy.txt/json go (default: log dir)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing accuracy.txt/json")] = False,
    require_pass: Annotated[bool, typer.Option(help="exit 1 when a target is missed")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display")] = False,
    livecodebench: Annotated[Path | None, typer.Option(help="gpt-oss-120b: local LiveCodeBench copy (folder of "
                                                       "code_generation_lite test*.jsonl)")] = None,
) -> None:
    """Score an accuracy log exactly as evaluate-accuracy.py does; print accuracy.txt and the verdict."""
    out_dir = output_dir or accuracy_log.parent
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--output-dir {out_dir} is a file; expected a directory for accuracy.txt/json",
                          hint="pass a directory path (it is created when missing)")
    scorer = family_module(benchmark, "evaluate")  # the benchmark folder's scorer (an unknown name: one line, exit 2)
    references = load_references(dataset, benchmark)
    extra = {"livecodebench": livecodebench} if livecodebench is not None else {}
    report = scorer.score_accuracy_log(accuracy_log, references, load_tokenizer(tokenizer), dtype=dtype,
                                       benchmark=benchmark, splitter=splitter, progress=not no_progress, **extra)
    with os_errors("write accuracy.txt/json"):
        paths = scorer.write_accuracy_outputs(report, out_dir, overwrite=overwrite)
    for warning in report.warnings:
        stderr.print(f"warning: {warning}", markup=False)
    stdout.print(scorer.accuracy_text(report), end="", markup=False, soft_wrap=True)
    stdout.print(checks_table(verdict_checks(report.verdicts, benchmark), title="accuracy verdict"))
    stdout.print(f"wrote {', '.join(map(str, paths))}", markup=False, soft_wrap=True)
    if require_pass and not report.passed:
        raise CheckFailed(f"accuracy targets of {benchmark} not met", hint="see the verdict table above")
