"""Who am I in a multi-process launch: rank, world size, host, from Open MPI / PMIx / Slurm variables."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["LaunchContext", "detect"]

_RANK_VARS = ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID")
_SIZE_VARS = ("OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "PMI_SIZE", "SLURM_NTASKS")


@dataclass(frozen=True)
class LaunchContext:
    """This process's place in the launch."""

    rank: int
    world_size: int
    host: str
    launcher: str

    @property
    def is_loadgen_rank(self) -> bool:
        """Rank 0 runs LoadGen and the SUT."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def detect(environ: Mapping[str, str] | None = None) -> LaunchContext:
    """Read the launcher's variables; a plain process is rank 0 of 1."""
    env = os.environ if environ is None else environ
    rank = next((int(env[v]) for v in _RANK_VARS if env.get(v, "").isdigit()), 0)
    size = next((int(env[v]) for v in _SIZE_VARS if env.get(v, "").isdigit()), 1)
    if "OMPI_COMM_WORLD_SIZE" in env:
        launcher = "srun --mpi=pmix" if "SLURM_STEP_ID" in env or "SLURM_STEPID" in env else "mpirun"
    elif "SLURM_PROCID" in env:
        launcher = "srun --mpi=pmix" if "PMIX_RANK" in env else "srun"
    else:
        launcher = "none"
    return LaunchContext(rank=rank, world_size=max(size, 1), host=socket.gethostname(), launcher=launcher)
