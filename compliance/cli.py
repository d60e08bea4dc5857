"""`compliance` console script: `compliance run TEST06` and `compliance verify TEST06 RUN_DIR`."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from compliance.report import raise_if_failed, render
from compliance.verify import Overrides, verify_run
from harness.config import load_config
from harness.console import run_cli
from harness.errors import ConfigError

app = typer.Typer(
    name="compliance",
    help="MLPerf compliance audit tests for Llama 2 70B: run TEST06 and verify its logs.",
    pretty_exceptions_show_locals=False,
    add_completion=False,
    no_args_is_help=True,
)


TESTS = ("TEST06",)  # Llama 2 70B needs only TEST06 (compliance/nvidia/README.md)
TestArg = Annotated[str, typer.Argument(help="audit test: TEST06", metavar="TEST")]


def _require_known(test: str) -> None:
    if test not in TESTS:
        raise ConfigError(f"audit test {test!r} is not supported; expected one of {', '.join(TESTS)}",
                          hint="Llama 2 70B needs only TEST06")


OutputDir = Annotated[Path | None, typer.Option("--output-dir", "-o", help="where TEST06/ goes")]


@app.callback()
def _group() -> None:
    """MLPerf compliance audit tests for Llama 2 70B: run TEST06 and verify its logs."""


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
    """Run TEST06 (performance mode with the audit settings), then verify it like `compliance verify`."""
    from compliance.run import audit_run_config, run_test06  # imports the runner only when running

    _require_known(test)
    run_config = audit_run_config(load_config(config, set_ or []), scenario, output_dir, overwrite)
    outcome = run_test06(run_config, progress=not no_progress)
    render(outcome.verification.result, str(outcome.verification.verify_file))
    raise_if_failed(outcome.verification.result)


@app.command()
def verify(
    test: TestArg,
    run_dir: Annotated[Path, typer.Argument(help="run directory (or a directory holding the accuracy log)")],
    output_dir: OutputDir = None,
    scenario: Annotated[str | None, typer.Option(help="override the run's scenario")] = None,
    dtype: Annotated[str | None, typer.Option(help="buffer dtype: int32 int64 int16 float32")] = None,
    eos_token_id: Annotated[int | None, typer.Option(help="override the EOS id (Llama 2: 2)")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace another log's TEST06 result")] = False,
) -> None:
    """Check a TEST06 run's accuracy log; write TEST06/verify_accuracy.txt and TEST06/accuracy/."""
    _require_known(test)
    verification = verify_run(run_dir, Overrides(scenario, dtype, eos_token_id), output_dir, overwrite)
    render(verification.result, str(verification.verify_file))
    raise_if_failed(verification.result)


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
