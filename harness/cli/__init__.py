"""`harness` console script: run | evaluate | config | dataset | slurm | preflight (one module each)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.cli import (  # noqa: F401  (each module registers its commands)
    commands,
    evaluate,
    pipeline,
    preflight,
    report,
    slurm,
)
from harness.cli._app import app
from harness.console import run_cli


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `harness` console script."""
    sys.exit(run_cli(app, argv))


__all__ = ["app", "main"]
