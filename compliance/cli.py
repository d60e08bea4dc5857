"""`compliance` console script: `compliance run TEST` and `compliance verify TEST RUN_DIR` (TEST06, TEST07, TEST09)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from compliance.report import raise_if_audit_failed, raise_if_failed, render, render_audit
from compliance.test07 import SCORE_PATTERN
from compliance.verify import Overrides, verify_run, verify_test07_run, verify_test09_run
from harness.artifacts import MANIFEST, RunArtifacts
from harness.benchmarks.registry import benchmark_facts
from harness.config import load_config
from harness.console import run_cli
from harness.errors import ConfigError

app = typer.Typer(
    name="compliance",
    help="MLPerf compliance audit tests: run TEST06 (Llama), TEST07 and TEST09 (gpt-oss-120b) and verify their logs.",
    pretty_exceptions_show_locals=False,
    add_completion=False,
    no_args_is_help=True,
)


TESTS = ("TEST06", "TEST07", "TEST09")  # the tests this tool runs; each benchmark's own list is in its facts
TestArg = Annotated[str, typer.Argument(help="audit test: TEST06, TEST07 or TEST09 (the benchmark's)",
                                        metavar="TEST")]


def _require_known(test: str, benchmark: str | None = None) -> None:
    """The test exists and (when the benchmark is known) is one of the benchmark's compliance tests."""
    if test not in TESTS:
        raise ConfigError(f"audit test {test!r} is not supported; expected one of {', '.join(TESTS)}",
                          hint="Llama benchmarks need TEST06; gpt-oss-120b needs TEST07 and TEST09")
    if benchmark is None:
        return
    tests = benchmark_facts(benchmark).compliance_tests
    if test not in tests:
        raise ConfigError(f"{benchmark} has no {test}; its compliance tests are {', '.join(tests)}",
                          hint=" and ".join(f"`compliance run {t}`" for t in tests) + f" for {benchmark}")


def _manifest_benchmark(run_dir: Path) -> str | None:
    if not (run_dir / MANIFEST).is_file():
        return None
    return RunArtifacts(run_dir).read_manifest().benchmark


OutputDir = Annotated[Path | None, typer.Option("--output-dir", "-o", help="where <TEST>/ goes")]


@app.callback()
def _group() -> None:
    """MLPerf compliance audit tests: run TEST06 (Llama), TEST07 and TEST09 (gpt-oss-120b) and verify their logs."""


@app.command("run")
def run_command(
    test: TestArg,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML")] = None,
    scenario: Annotated[str | None, typer.Option(help="Offline, Server or Interactive")] = None,
    output_dir: OutputDir = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: key.path=value")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing run directory")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display")] = False,
) -> None:
    """Run an audit test (performance mode with its audit settings), then verify it like `compliance verify`."""
    from compliance.run import audit_run_config, run_audit, run_test06  # imports the runner only when running

    _require_known(test)
    loaded = load_config(config, set_ or [])
    _require_known(test, loaded.benchmark)
    run_config = audit_run_config(loaded, scenario, output_dir, overwrite, test=test)
    if test == "TEST06":
        outcome = run_test06(run_config, progress=not no_progress)
        render(outcome.verification.result, str(outcome.verification.verify_file))
        raise_if_failed(outcome.verification.result)
        return
    audit = run_audit(run_config, progress=not no_progress)
    render_audit(audit.verification)
    raise_if_audit_failed(audit.verification)


@app.command()
def verify(
    test: TestArg,
    run_dir: Annotated[Path, typer.Argument(help="run directory (or a directory holding the accuracy log)")],
    output_dir: OutputDir = None,
    scenario: Annotated[str | None, typer.Option(help="TEST06: override the run's scenario")] = None,
    dtype: Annotated[str | None, typer.Option(help="TEST06: buffer dtype: int32 int64 int16 float32")] = None,
    eos_token_id: Annotated[int | None, typer.Option(help="TEST06: override the EOS id (Llama 2: 2)")] = None,
    accuracy_threshold: Annotated[float | None, typer.Option(
        "--accuracy-threshold", help="TEST07: override test07_accuracy_threshold")] = None,
    score_pattern: Annotated[str, typer.Option(
        "--score-pattern", help="TEST07: regex whose group 1 is the score in the scorer's output")
    ] = SCORE_PATTERN,
    min_output_tokens: Annotated[float | None, typer.Option(
        "--min-output-tokens", help="TEST09: override test09_min_output_tokens")] = None,
    max_output_tokens: Annotated[float | None, typer.Option(
        "--max-output-tokens", help="TEST09: override test09_max_output_tokens")] = None,
    benchmark: Annotated[str | None, typer.Option(help="TEST07/TEST09: the benchmark of a directory without a "
                                                       "manifest (default: the one that has the test)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace another log's result")] = False,
) -> None:
    """Check an audit run's accuracy log; write <TEST>/ (verify file, accuracy/, performance/run_1/)."""
    _require_known(test)
    _require_known(test, benchmark or _manifest_benchmark(run_dir))
    if test == "TEST06":
        verification = verify_run(run_dir, Overrides(scenario, dtype, eos_token_id), output_dir, overwrite)
        render(verification.result, str(verification.verify_file))
        raise_if_failed(verification.result)
        return
    if test == "TEST07":
        audit = verify_test07_run(run_dir, None, accuracy_threshold, output_dir, overwrite, benchmark=benchmark,
                                  pattern=score_pattern)
    else:
        audit = verify_test09_run(run_dir, min_output_tokens, max_output_tokens, output_dir, overwrite,
                                  benchmark=benchmark)
    render_audit(audit)
    raise_if_audit_failed(audit)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `compliance` console script."""
    code = run_cli(app, argv)
    if "harness.runner" in sys.modules:  # `compliance run` ran a test: same exit rule as `harness run`
        from harness import runner

        if runner.leave_without_teardown():
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    sys.exit(code)


__all__ = ["app", "main"]
