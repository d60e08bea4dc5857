"""NCCL all-reduce bus bandwidth through torch.distributed (the preflight's only torch importer).

Each rank drives one GPU (LOCAL_RANK or rank modulo the visible GPUs); the rendezvous address and port come
from rank 0 through MPI (see harness.preflight). busbw uses the nccl-tests formula (parsers.bus_bandwidth).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from harness.network.parsers import bus_bandwidth


@dataclass(frozen=True)
class AllReduceResult:
    """Timing of one all-reduce size over all ranks."""

    size_bytes: int
    ranks: int
    seconds: float
    algbw_gbyte_s: float
    busbw_gbyte_s: float


def all_reduce_busbw(rank: int, ranks: int, master: str, port: int, size_bytes: int,
                     iterations: int = 20) -> AllReduceResult:
    """Time float32 all-reduces of size_bytes on this rank's GPU; every rank must call it."""
    torch.cuda.set_device(rank % torch.cuda.device_count())
    dist.init_process_group("nccl", init_method=f"tcp://{master}:{port}", rank=rank, world_size=ranks)
    try:
        tensor = torch.ones(max(size_bytes // 4, 1), dtype=torch.float32, device="cuda")
        for _ in range(5):
            dist.all_reduce(tensor)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(tensor)
        torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / iterations
    finally:
        dist.destroy_process_group()
    algbw, busbw = bus_bandwidth(tensor.numel() * 4, seconds, ranks)
    return AllReduceResult(tensor.numel() * 4, ranks, seconds, algbw, busbw)
