"""What a Slurm stage is: its command, its task layout, and the options the renderer hands a stage builder."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.config import RunConfig

__all__ = ["JOB_ID", "ServerStep", "StageBuilder", "StageCommand", "StageOptions", "TasksLayout"]

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
class ServerStep:
    """One serving-engine job step of a serve* stage: where it runs, how many ranks and GPUs, its port and argv."""

    index: int
    first_node: int  # srun --relative: the step's first node within the allocation
    nodes: int
    ntasks: int
    gpus_per_node: int  # GPUs the step takes on each of its nodes (0: not requested)
    port: int
    argv: tuple[str, ...]
    description: str
    mpi: bool = True

    @property
    def tasks_per_node(self) -> int:
        """Ranks of this step on each of its nodes."""
        return self.ntasks // self.nodes


@dataclass(frozen=True)
class StageCommand:
    """The command every task of the job runs, with a one-line description for the script header.

    run_dir: the run directory the command writes (the script checks its manifest.json afterwards);
    paths: (what, path) pairs the command reads or writes inside the container (checked against the mounts);
    servers: serve* stages only: server steps started before the command, which then runs once as their client;
    client_config: the config the copy next to the script holds (default: the config rendered);
    files: (name, text) written next to the script (e.g. a trtllm-serve --extra_llm_api_options YAML);
    requires: (what, path) inputs the script checks before srun, failing with exit 2 and a line naming them;
    fail_fast: srun --kill-on-bad-exit=1 (every rank ends when one fails); the smoke stage turns it off, so that
    every rank reports its checks and the job's exit code is the failing check's, not a killed rank's 143.
    """

    argv: tuple[str, ...]
    description: str
    needs_gpus: bool
    layout: TasksLayout
    run_dir: str | None = None
    paths: tuple[tuple[str, str | None], ...] = ()
    servers: tuple[ServerStep, ...] = ()
    client_config: RunConfig | None = None
    files: tuple[tuple[str, str], ...] = ()
    requires: tuple[tuple[str, str], ...] = ()  # (what, path) that must exist before the step starts
    fail_fast: bool = True


StageBuilder = Callable[[RunConfig, StageOptions], StageCommand]
