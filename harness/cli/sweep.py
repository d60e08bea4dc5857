"""`harness sweep`: a concurrency sweep against a set of URLs (one closed-loop level each), then its table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from harness.cli._app import app
from harness.cli.commands import ConfigOption, SetOption
from harness.config import apply_overrides, load_config
from harness.console import stdout
from harness.report.sweep import SWEEP_FILE
from harness.report.tables import markdown_sweep_table
from harness.sweep.run import level_line, parse_levels, run_sweep, say, sweep_config


@app.command("sweep")
def sweep_command(
    concurrency: Annotated[str, typer.Option(help="levels, requests in flight per URL: e.g. 1,2,4,8")],
    output: Annotated[Path, typer.Option("--output", "-o", help="new directory for the sweep")],
    urls: Annotated[str | None, typer.Option(help="comma-separated server base URLs (backend.kind endpoint); "
                                                  "default: the config's backend")] = None,
    config: ConfigOption = None,
    set_: SetOption = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing sweep directory")] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress display")] = False,
) -> None:
    """Throughput against tokens/s per user and TTFT at each concurrency level (MLPerf Endpoints metrics)."""
    levels = parse_levels(concurrency)
    url_list = [u.strip() for u in urls.split(",") if u.strip()] if urls is not None else None
    # --urls first, so that --set backend.* keys are the endpoint backend's
    run_config = apply_overrides(sweep_config(load_config(config), url_list), set_ or [])
    sweep = run_sweep(run_config, levels, output, overwrite=overwrite, command=sys.argv, progress=not no_progress,
                      on_level=lambda metrics: say(level_line(metrics)))
    stdout.print(markdown_sweep_table(sweep), markup=False, soft_wrap=True, end="")
    stdout.print(f"sweep: {output / SWEEP_FILE} ({len(sweep.levels)} levels); figure: harness report {output}",
                 markup=False, soft_wrap=True)
