"""`harness` console script: run | evaluate | config | dataset | slurm | preflight | report | sweep."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from harness.cli import (  # noqa: F401  (each module registers its commands)
    commands,
    evaluate,
    pipeline,
    preflight,
    report,
    slurm,
    sweep,
)
from harness.cli._app import app
from harness.console import run_cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `harness` console script."""
    code = run_cli(app, argv)
    leave_if_native_threads_run(code)
    sys.exit(code)


def leave_if_native_threads_run(code: int) -> None:
    """After an interrupted run whose backend thread is still inside native code, exit without interpreter
    teardown (which would end in std::terminate, SIGABRT, exit 134); everything is recorded and flushed."""
    from harness import runner

    if runner.leave_without_teardown():
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)


__all__ = ["app", "leave_if_native_threads_run", "main"]
