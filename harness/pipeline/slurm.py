"""Slurm mode: one job per selected stage, chained with afterok, each job running `--only <stage>`.

Because every job runs `harness pipeline --config FILE --only STAGE`, the skip rules and the state file
behave inside the allocation exactly as locally. Rendering and sbatch submission belong to harness.slurm
(issue 6); this module only plans the chain and hands it over.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import EnvironmentProblem

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
        argv = ("python", "-m", "harness", "pipeline", "--config", str(request.config.resolve()),
                "--output-dir", str(plan.root), "--only", decision.stage.id)
        if request.force:
            argv += ("--force",)
        jobs.append(ChainJob(job_name(decision.stage.id), decision.stage.id, argv, jobs[-1].name if jobs else None))
    return jobs


def _slurm_submitter() -> Callable[..., Any]:
    try:
        module = importlib.import_module("harness.slurm.submit")
    except ImportError:
        module = None
    submitter = getattr(module, "submit_pipeline_jobs", None)
    if submitter is None:
        raise EnvironmentProblem(
            "executor: slurm needs harness.slurm.submit.submit_pipeline_jobs (Slurm rendering, issue 6), "
            "which this installation does not have yet",
            hint="use executor: local, or `--dry-run` to see the stages; the chain is in docs/pipeline.md",
        )
    return submitter  # type: ignore[no-any-return]  # looked up dynamically


def submit_chain(plan: Plan, request: PipelineRequest, decisions: list[Decision],
                 echo: Callable[[str], None]) -> list[ChainJob]:
    """Submit the chain through harness.slurm; print each job."""
    jobs = plan_chain(plan, request, decisions)
    submit = _slurm_submitter()
    for job in jobs:
        echo(f"slurm job {job.name}: {' '.join(job.argv)}" + (f" (after {job.after})" if job.after else ""))
    submit(jobs, plan.root / "slurm")
    return jobs
