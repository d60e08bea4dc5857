"""Fabric checks and traffic accounting for multi-node runs.

    counters.py     RDMA/NIC counter snapshots (sysfs, `rdma statistic`), deltas, JSON round-trips
    capture.py      capture(run_dir, "before"|"after"): counter files in the run dir + README summary
    rdma.py         RDMA ports, link state, GIDs and RoCE versions from sysfs
    inventory.py    per-host inventory: CPUs, memory, GPUs (nvidia-smi), RDMA ports, interfaces
    parsers.py      nccl-tests and perftest output parsing; the nccl-tests busbw formula
    checks.py       measurements -> list[Check] against PreflightConfig
    tools.py        runs all_reduce_perf / ib_write_bw when installed
    mpi_probe.py    mpi4py: gather, all-pairs latency/bandwidth (loaded only under MPI)
    nccl_probe.py   torch.distributed NCCL all-reduce (loaded only when GPUs take part)

Its config section, PreflightConfig, is harness/sections/preflight.py (below harness.config).
"""
