"""What a Slurm stage is: its command, its task layout, and the options the renderer hands a stage builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.config import RunConfig

__all__ = ["JOB_ID", "StageBuilder", "StageCommand", "StageOptions", "TasksLayout"]

JOB_ID = "${SLURM_JOB_ID}"  # the one shell expansion an argv element may contain (see render.py)


@dataclass(frozen=True)
class TasksLayout:
    """How many nodes and ranks a stage occupies, and whether ranks talk MPI (srun --mpi=...)."""

    nodes: int = 1
    ntasks_per_node: int = 1
    gpus_per_node: int = 0
    mpi: bool = False

    @property
    def ntasks(self) -> int:
        """Total tasks (ranks) of the job."""
        return self.nodes * self.ntasks_per_node


@dataclass(frozen=True)
class StageOptions:
    """What the renderer passes to a builder: the run config file next to the script, where to write."""

    config_path: str
    run_dir: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StageCommand:
    """The command every task of the job runs, with a one-line description for the script header."""

    argv: tuple[str, ...]
    description: str
    needs_gpus: bool
    layout: TasksLayout


StageBuilder = Callable[[RunConfig, StageOptions], StageCommand]
