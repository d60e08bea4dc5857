"""Who am I in a multi-process launch: rank, world size, host (Open MPI / PMIx / Slurm variables), process identity.

A ProcessIdentity (host, pid, start time, and a key naming the machine and pid namespace) lets rank 0 tell
whether a worker on its own machine still exists, so that a killed worker is named even when the launcher
stops rank 0 before any heartbeat is missed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LaunchContext", "ProcessIdentity", "detect", "process_gone", "process_identity"]

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


@dataclass(frozen=True)
class ProcessIdentity:
    """One process as another process on the same machine can check it: pid plus start time, per pid namespace."""

    host: str
    pid: int
    start_ticks: int | None  # field 22 of /proc/<pid>/stat: tells a reused pid from the original process
    machine: str  # boot id + pid namespace: equal keys mean the pid is meaningful here


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in parentheses may hold spaces
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return None


def _machine_key() -> str:
    parts = []
    for read in (lambda: Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
                 lambda: os.readlink("/proc/self/ns/pid")):
        try:
            parts.append(read())
        except OSError:
            parts.append("?")
    return f"{socket.gethostname()}|{'|'.join(parts)}"


def process_identity() -> ProcessIdentity:
    """This process, as rank 0 records it from a worker's first message."""
    pid = os.getpid()
    return ProcessIdentity(host=socket.gethostname(), pid=pid, start_ticks=_start_ticks(pid), machine=_machine_key())


def process_gone(identity: ProcessIdentity) -> bool | None:
    """True when that process no longer exists (exited, killed, a zombie, or its pid reused); False when it
    runs; None when this process cannot tell (another machine or pid namespace, or no /proc to compare)."""
    if identity.machine != _machine_key() or "?" in identity.machine.split("|")[1:]:
        return None
    try:
        os.kill(identity.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        pass
    if _state(identity.pid) in ("Z", "X"):
        return True
    ticks = _start_ticks(identity.pid)
    return identity.start_ticks is not None and ticks is not None and ticks != identity.start_ticks  # pid reused
