"""run_pipeline(): load the pipeline file, plan, decide, then print the plan or execute it."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.pipeline.executor import Decision, Executor, PipelineResult
from harness.pipeline.plan import Plan, build_plan, select
from harness.pipeline.spec import load_pipeline
from harness.pipeline.state import STATE_FILE, StateFile


@dataclass(frozen=True)
class PipelineRequest:
    """What `harness pipeline` was asked to do."""

    config: Path
    start: str | None = None
    only: str | None = None
    dry_run: bool = False
    force: bool = False
    output_dir: Path | None = None
    executor: str | None = None  # overrides the file's executor (Slurm jobs pass "local")


@dataclass
class PipelineOutcome:
    """The plan, the decisions, and (unless dry-run) what ran."""

    plan: Plan
    decisions: list[Decision]
    result: PipelineResult | None

    @property
    def exit_code(self) -> int:
        """The process exit code: 0, or 1 when a stage completed with a negative verdict."""
        return self.result.exit_code if self.result is not None else 0


def resume_command(request: PipelineRequest, stage_id: str) -> str:
    """The exact command that resumes the pipeline at a stage."""
    argv = ["python", "-m", "harness", "pipeline", "--config", str(request.config.resolve())]
    if request.output_dir is not None:
        argv += ["--output-dir", str(request.output_dir.resolve())]
    return shlex.join([*argv, "--from", stage_id])


def run_pipeline(request: PipelineRequest, echo: Callable[[str], None]) -> PipelineOutcome:
    """Plan the pipeline and, unless dry_run, execute it locally or submit it as a Slurm job chain."""
    spec, base_dir = load_pipeline(request.config)
    plan = build_plan(spec, base_dir, request.config, request.output_dir)
    for note in plan.notes:
        echo(f"note: {note}")
    stages = select(plan, request.start, request.only)
    state = StateFile(plan.root / STATE_FILE)
    executor = Executor(plan, spec, state, echo, lambda stage_id: resume_command(request, stage_id))
    decisions = executor.decide(stages, request.force)
    if request.dry_run:
        return PipelineOutcome(plan, decisions, None)
    if (request.executor or spec.executor) == "slurm":
        from harness.pipeline.slurm import submit_chain

        submit_chain(plan, request, decisions, echo)
        return PipelineOutcome(plan, decisions, None)
    return PipelineOutcome(plan, decisions, executor.execute(decisions))
