"""Slurm mode: one job per selected stage, chained with afterok, each job running `--only <stage>`.

Because every job runs `harness pipeline --config FILE --only STAGE`, the skip rules and the state file
behave inside the allocation exactly as locally. Scripts are rendered and submitted by harness.slurm
(one registered stage per pipeline job), into <output_dir>/slurm.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.config import RunConfig
from harness.errors import ConfigError
from harness.slurm.render import RenderedJob, render_job
from harness.slurm.stages import StageCommand, StageOptions, TasksLayout, register
from harness.slurm.submit import SubmittedJob, submit_stage

if TYPE_CHECKING:
    from harness.pipeline.driver import PipelineRequest
    from harness.pipeline.executor import Decision
    from harness.pipeline.plan import Plan


@dataclass(frozen=True)
class ChainJob:
    """One Slurm job of the chain: a job name, the command it runs, the job it waits for."""

    name: str
    stage_id: str
    argv: tuple[str, ...]
    after: str | None


def job_name(stage_id: str) -> str:
    """A Slurm-safe identifier for a stage id (llama2-70b-99/Server/accuracy -> llama2_70b_99__Server__accuracy)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", stage_id.replace("/", "__"))


def plan_chain(plan: Plan, request: PipelineRequest, decisions: list[Decision]) -> list[ChainJob]:
    """The jobs for the stages that need to run, each afterok on the previous one."""
    jobs: list[ChainJob] = []
    for decision in (d for d in decisions if d.run):
        argv: tuple[str, ...] = ("python", "-m", "harness", "pipeline", "--config", str(request.config.resolve()),
                "--output-dir", str(plan.root), "--executor", "local", "--only", decision.stage.id)
        if request.force:
            argv += ("--force",)
        jobs.append(ChainJob(job_name(decision.stage.id), decision.stage.id, argv, jobs[-1].name if jobs else None))
    return jobs


def _stage_builder(job: ChainJob) -> Callable[[RunConfig, StageOptions], StageCommand]:
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        # One task: the pipeline process; the stage's run inside it uses in-process replicas.
        layout = TasksLayout(1, 1, config.slurm.gpus_per_node, mpi=False)
        return StageCommand((config.slurm.python, *job.argv[1:]), f"harness pipeline stage {job.stage_id}",
                            config.slurm.gpus_per_node > 0, layout)

    return build


def render_chain(plan: Plan, request: PipelineRequest, decisions: list[Decision]) -> list[tuple[ChainJob, RenderedJob]]:
    """Write one sbatch script per job under <output_dir>/slurm (through harness.slurm); submit nothing."""
    jobs = plan_chain(plan, request, decisions)
    configs = {s.id: s.config for s in plan.stages if s.config is not None}
    fallback = next(iter(configs.values()), None)
    rendered = []
    for job in jobs:
        config = configs.get(job.stage_id, fallback)
        if config is None:
            raise ConfigError("executor: slurm needs at least one run stage for its slurm: settings",
                              hint="add a run stage, or use executor: local for package/check alone")
        register(job.name, _stage_builder(job), replace=True)
        rendered.append((job, render_job(job.name, config, plan.root / "slurm", str(request.config.resolve()),
                                         overwrite=True)))
    return rendered


def submit_chain(plan: Plan, request: PipelineRequest, decisions: list[Decision],
                 echo: Callable[[str], None]) -> list[SubmittedJob]:
    """Render the chain and sbatch it, each job afterok on the previous one."""
    submitted: list[SubmittedJob] = []
    for job, script in render_chain(plan, request, decisions):
        submitted.append(submit_stage(script, submitted[-1].job_id if submitted else None))
        after = submitted[-1].depends_on
        echo(f"submitted {job.stage_id} as Slurm job {submitted[-1].job_id}" + (f" (afterok:{after})" if after else ""))
    if not submitted:
        echo("nothing to submit: every selected stage is up to date")
    return submitted
