"""`harness pipeline`: the whole submission flow in one command, resumable stage by stage."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli._app import app
from harness.console import stderr, stdout
from harness.errors import CheckFailed
from harness.pipeline.driver import PipelineOutcome, PipelineRequest, run_pipeline


class Executor(enum.StrEnum):
    """Where the stages run."""

    LOCAL = "local"
    SLURM = "slurm"


def _table(outcome: PipelineOutcome) -> Table:
    table = Table(title=f"pipeline {outcome.plan.root}", show_lines=False)
    for column in ("stage", "action", "why", "status"):
        table.add_column(column, overflow="fold")
    records = outcome.result.records if outcome.result else {}
    for decision in outcome.decisions:
        record = records.get(decision.stage.id)
        status = "-" if record is None else record.status + (f" ({record.verdict})" if record.verdict else "")
        table.add_row(decision.stage.id, "run" if decision.run else "skip", decision.reason, status)
    return table


def _verdicts(outcome: PipelineOutcome) -> None:
    result = outcome.result
    if result is None:
        return
    for name in result.failed_verdicts:
        stderr.print(f"warning: {name}: {result.records[name].reason}", markup=False, soft_wrap=True)
    if result.check_failed:
        raise CheckFailed(f"the submission check failed: {result.records['check'].reason}",
                          hint=f"see {outcome.plan.root / 'logs' / 'check.log'}")


@app.command("pipeline")
def pipeline_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="pipeline YAML (see docs/pipeline.md)")],
    start: Annotated[str | None, typer.Option("--from", help="start at STAGE (e.g. performance, Server)")] = None,
    only: Annotated[str | None, typer.Option("--only", help="run only STAGE (e.g. Offline/accuracy)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="print the plan; run nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="re-run selected stages even when up to date")] = False,
    output_dir: Annotated[Path | None, typer.Option(help="override the file's output_dir")] = None,
    executor: Annotated[Executor | None, typer.Option(help="override the file's executor")] = None,
) -> None:
    """Accuracy, performance and compliance runs (the benchmark's TEST06, or TEST07 and TEST09) per benchmark ×
    scenario, then package and check."""
    request = PipelineRequest(config, start, only, dry_run, force, output_dir, executor.value if executor else None)
    outcome = run_pipeline(request, lambda line: stderr.print(line, markup=False, soft_wrap=True))
    if dry_run:
        for decision in outcome.decisions:
            action = "run " if decision.run else "skip"
            stdout.print(f"{action} {decision.stage.id}  ({decision.reason})\n     {decision.stage.command}",
                         markup=False, soft_wrap=True)
        raise typer.Exit(0)
    stdout.print(_table(outcome))
    _verdicts(outcome)
