"""What a sandboxed run may use (SandboxLimits), what it produced (SandboxResult), and how many run at once."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["HELPER_PROCESSES", "SandboxLimits", "SandboxResult", "rlimits", "sandbox_workers"]

# The sandbox's own processes under the slot's uid: the launcher, bwrap's monitor, the namespace's init (pid 1).
HELPER_PROCESSES = 3


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one run. Memory is address space per process; processes count the program's whole tree."""

    cpu_seconds: float = 10.0
    wall_seconds: float = 20.0
    memory_bytes: int = 2 * 1024**3
    processes: int = 64
    output_bytes: int = 16 * 1024**2  # stdout and stderr together
    file_bytes: int = 64 * 1024**2  # the largest file the program may write

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "wall_seconds", "memory_bytes", "processes", "output_bytes", "file_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SandboxResult:
    """One run's outcome. returncode is None when we killed it; a program killed by a signal reads 128 + signal."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool  # wall or CPU limit
    output_truncated: bool
    killed: bool  # we killed it (timeout / output cap)
    wall_seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.killed and not self.timed_out


def rlimits(limits: SandboxLimits, *, nproc_base: int = 0) -> dict[str, tuple[int, int]]:
    """The setrlimit values (soft, hard) the launcher sets before it executes bwrap.

    RLIMIT_CPU's soft limit sends SIGXCPU, the hard one a second later SIGKILL. RLIMIT_NPROC counts every process
    of the uid: bwrap's helpers and, when the sandbox cannot have a uid of its own, `nproc_base` already running.
    """
    cpu = max(1, math.ceil(limits.cpu_seconds))
    nproc = nproc_base + limits.processes + HELPER_PROCESSES
    return {
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_AS": (limits.memory_bytes, limits.memory_bytes),
        "RLIMIT_NPROC": (nproc, nproc),
        "RLIMIT_FSIZE": (limits.file_bytes, limits.file_bytes),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NOFILE": (1024, 1024),
    }


def sandbox_workers(requested: int | None = None) -> int:
    """How many sandboxes run at once: `requested`, or one per core this process may use."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"sandbox workers must be at least 1, got {requested}")
        return requested
    return max(1, len(os.sched_getaffinity(0)))

