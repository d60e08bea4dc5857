"""`harness report`: PNG figures, an HTML page and a Markdown table from run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli._app import app
from harness.console import stdout
from harness.report.build import INDEX, TABLE, write_report


@app.command("report")
def report_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories written by `harness run`, sweep directories "
                                                        "written by `harness sweep` (or their level directories)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="new directory for the report")] = Path("report"),
    overwrite: Annotated[bool, typer.Option(help="replace an existing report directory")] = False,
) -> None:
    """Throughput, TTFT/TPOT CDFs, output lengths and per-replica load per run, a table across runs; per sweep
    a Pareto figure (system tokens/s against tokens/s per user, TTFT p90) and a table of its levels."""
    report = write_report(run_dirs, output, overwrite)
    stdout.print((output / TABLE).read_text(), markup=False, soft_wrap=True, end="")
    figures = report.figure_count
    stdout.print(f"report: {output / INDEX} ({figures} figures, table in {output / TABLE})", markup=False)
