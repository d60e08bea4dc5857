"""`harness slurm`: render | submit | pipeline | status | stages — thin commands over harness.slurm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from harness.cli._app import app
from harness.config import load_config
from harness.console import stdout
from harness.errors import CheckFailed
from harness.slurm.render import default_job_dir, render_job, render_text
from harness.slurm.stages import stage_names
from harness.slurm.submit import SubmittedJob, job_status, submit_pipeline, submit_stage

slurm_app = typer.Typer(help="Render, submit and follow Slurm (+ Pyxis) jobs for harness stages.",
                        pretty_exceptions_show_locals=False, no_args_is_help=True)
app.add_typer(slurm_app, name="slurm")

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML (slurm: section)")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="override: key.path=value")]
JobDirOption = Annotated[Path | None, typer.Option(help="folder for scripts, config copies and job logs; "
                                                       "default slurm-jobs/<UTC time>")]
OverwriteOption = Annotated[bool, typer.Option(help="replace scripts already in --job-dir")]
StageArg = Annotated[str, typer.Argument(help="stage: run, accuracy, compliance, or a registered one")]


def _source(config: Path | None) -> str:
    return str(config.resolve()) if config else "the embedded default config"


def _submitted_table(jobs: list[SubmittedJob]) -> Table:
    table = Table(title="submitted")
    for column in ("stage", "job id", "after", "script"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(job.stage, job.job_id, job.depends_on or "-", str(job.script_path))
    return table


@slurm_app.command("render")
def render(stage: StageArg, config: ConfigOption = None, set_: SetOption = None, job_dir: JobDirOption = None,
           overwrite: OverwriteOption = False,
           print_: Annotated[bool, typer.Option("--print", help="print the script; write nothing")] = False) -> None:
    """Write the sbatch script of one stage (and the config copy it runs) without submitting it."""
    run_config = load_config(config, set_ or [])
    folder = job_dir or default_job_dir()
    if print_:
        typer.echo(render_text(stage, run_config, folder, _source(config)), nl=False)
        return
    job = render_job(stage, run_config, folder, _source(config), overwrite)
    typer.echo(f"wrote {job.script_path}\nwrote {job.config_path}\nsubmit with: sbatch {job.script_path}")


@slurm_app.command("submit")
def submit(stage: StageArg, config: ConfigOption = None, set_: SetOption = None, job_dir: JobDirOption = None,
           overwrite: OverwriteOption = False,
           after: Annotated[str | None, typer.Option(help="start after this job succeeded (afterok)")] = None,
           ) -> None:
    """Render one stage and submit it with sbatch; prints the job id."""
    run_config = load_config(config, set_ or [])
    job = render_job(stage, run_config, job_dir or default_job_dir(), _source(config), overwrite)
    stdout.print(_submitted_table([submit_stage(job, after)]))


@slurm_app.command("pipeline")
def pipeline(config: ConfigOption = None, set_: SetOption = None, job_dir: JobDirOption = None,
             overwrite: OverwriteOption = False,
             stages: Annotated[str, typer.Option(help="comma-separated stages, chained afterok")] = "run,accuracy",
             smoke: Annotated[bool | None, typer.Option(
                 "--smoke/--no-smoke", help="put the in-image smoke stage first (default: when the stages run in "
                                            "a container, slurm.container_image)")] = None,
             ) -> None:
    """Submit several stages, each starting only after the previous one succeeded (afterok)."""
    run_config = load_config(config, set_ or [])
    names = [name.strip() for name in stages.split(",") if name.strip()]
    jobs = submit_pipeline(names, run_config, job_dir or default_job_dir(), _source(config), overwrite, smoke)
    stdout.print(_submitted_table(jobs))


@slurm_app.command("status")
def status(job: Annotated[str, typer.Argument(help="Slurm job id")]) -> None:
    """Show a job's state, exit code and reason (scontrol, squeue or sacct); exit 1 if it failed."""
    found = job_status(job)
    stdout.print(f"job {found.job_id}: {found.state}"
                 + (f" exit {found.exit_code}" if found.exit_code else "")
                 + (f" ({found.reason})" if found.reason else "") + f"  [{found.source}]", markup=False)
    if found.finished and found.state != "COMPLETED":
        raise CheckFailed(f"job {found.job_id} ended {found.state} (exit {found.exit_code or '?'})",
                          hint="read the job's output file (#SBATCH --output in its script)")


@slurm_app.command("stages")
def stages_command() -> None:
    """List the registered stages."""
    stdout.print("\n".join(stage_names()), markup=False)
