"""CPU threads per rank: the host's cores are shared among the ranks placed on it."""

from __future__ import annotations

import os

from harness.backends.hf.backend import cpu_threads_per_rank


def test_threads_are_divided_among_local_ranks() -> None:
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads_per_rank({}) == cores
    assert cpu_threads_per_rank({"OMPI_COMM_WORLD_LOCAL_SIZE": str(cores * 2)}) == 1
    assert cpu_threads_per_rank({"SLURM_STEP_TASKS_PER_NODE": "1(x2)"}) == cores
