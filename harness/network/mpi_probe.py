"""MPI side of the preflight (the only mpi4py importer outside harness.distributed): gather, all-pairs probes.

Every rank calls the same functions in the same order. Pairs are measured one at a time (the other ranks
wait at a barrier) so that a slow link is not hidden by contention from other pairs.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from mpi4py import MPI

_TAG = 17


@dataclass(frozen=True)
class PairResult:
    """Ping-pong between two ranks: half round trip of a tiny message, and one-way bandwidth of a large one."""

    rank_a: int
    rank_b: int
    host_a: str
    host_b: str
    latency_us: float
    bandwidth_gbit_s: float


def world() -> tuple[int, int]:
    """(rank, size) of COMM_WORLD."""
    return MPI.COMM_WORLD.Get_rank(), MPI.COMM_WORLD.Get_size()


def gather(value: Any) -> list[Any] | None:
    """Every rank's value at rank 0 (None elsewhere)."""
    return MPI.COMM_WORLD.gather(value, root=0)  # type: ignore[no-any-return]  # mpi4py is untyped here


def allgather_flags(flag: bool) -> list[bool]:
    """Every rank's flag on every rank."""
    return [bool(f) for f in MPI.COMM_WORLD.allgather(flag)]


def broadcast(value: Any) -> Any:
    """Rank 0's value on every rank."""
    return MPI.COMM_WORLD.bcast(value, root=0)


def _ping_pong(comm: Any, peer: int, first: bool, buffer: np.ndarray, iterations: int) -> float:
    """Seconds per round trip (the first rank sends first)."""
    start = time.perf_counter()
    for _ in range(iterations):
        if first:
            comm.Send(buffer, dest=peer, tag=_TAG)
            comm.Recv(buffer, source=peer, tag=_TAG)
        else:
            comm.Recv(buffer, source=peer, tag=_TAG)
            comm.Send(buffer, dest=peer, tag=_TAG)
    return (time.perf_counter() - start) / iterations


def all_pairs(message_bytes: int, iterations: int) -> list[PairResult] | None:
    """Latency and bandwidth for every rank pair; the list at rank 0, None on the other ranks."""
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    hosts = comm.allgather(socket.gethostname())
    small, large = np.zeros(1, dtype=np.uint8), np.zeros(message_bytes, dtype=np.uint8)
    mine = []
    for a, b in combinations(range(size), 2):
        if rank in (a, b):
            peer, first = (b, True) if rank == a else (a, False)
            _ping_pong(comm, peer, first, large, 1)  # warm-up; also lines the two ranks up
            latency = _ping_pong(comm, peer, first, small, iterations) / 2
            bandwidth = message_bytes * 8 / (_ping_pong(comm, peer, first, large, iterations) / 2) / 1e9
            if first:
                mine.append(PairResult(a, b, hosts[a], hosts[b], latency * 1e6, bandwidth))
        comm.Barrier()
    gathered = comm.gather(mine, root=0)
    return None if gathered is None else [pair for part in gathered for pair in part]
