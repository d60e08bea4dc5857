"""`harness preflight`: host/GPU/RDMA inventory per rank, MPI all-pairs, NCCL busbw, nccl-tests/perftest -> checks.

Run it alone for one host, or under `mpirun -np N` / `srun --mpi=pmix` for the fabric: every rank
inventories its host, rank pairs ping-pong over MPI, and with GPUs every rank joins an NCCL all-reduce.
Rank 0 gathers everything and judges it against the `preflight:` thresholds of the run config.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.artifacts import write_json_atomic
from harness.config import RunConfig
from harness.errors import InputError
from harness.network import checks as judge
from harness.network.inventory import host_inventory
from harness.network.parsers import parse_nccl_tests, parse_perftest
from harness.network.tools import run_all_reduce_perf, run_ib_write_bw_loopback
from harness.types import Check

__all__ = ["PreflightInputs", "PreflightReport", "judge_report", "run_preflight", "under_mpi", "write_report"]


@dataclass(frozen=True)
class PreflightInputs:
    """Where to look: the sysfs root, saved nccl-tests/perftest logs, whether to run installed tools."""

    sysfs_root: Path = Path("/sys")
    nccl_tests_log: Path | None = None
    perftest_log: Path | None = None
    run_tools: bool = True


@dataclass
class PreflightReport:
    """Checks (rank 0's verdict) and the measurements behind them (written as JSON)."""

    checks: list[Check]
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[Check]:
        """The checks that failed."""
        return [c for c in self.checks if c.failed]

    def to_json(self) -> dict[str, Any]:
        """Measurements plus checks, JSON-ready."""
        return {**self.data, "checks": [asdict(c) | {"status": c.status.value} for c in self.checks]}


def under_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """True when an MPI launcher (mpirun, srun --mpi=pmix) started this process with other ranks."""
    env = os.environ if environ is None else environ
    size = env.get("OMPI_COMM_WORLD_SIZE") or env.get("PMI_SIZE") or "1"
    if "PMIX_RANK" in env:  # srun --mpi=pmix sets no size variable of PMIx's own
        size = env.get("SLURM_STEP_NUM_TASKS") or env.get("SLURM_NTASKS") or size
    return size.isdigit() and int(size) > 1


def _read_log(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}", hint="pass an existing log file") from None


def _tool_checks(hosts: list[dict[str, Any]], config: RunConfig, inputs: PreflightInputs,
                 data: dict[str, Any]) -> list[Check]:
    """nccl-tests and perftest: parse given logs, else run the binaries on this host when installed."""
    found: list[Check] = []
    gpus = len(hosts[0]["gpus"])
    nccl_text = _read_log(inputs.nccl_tests_log) if inputs.nccl_tests_log else (
        run_all_reduce_perf(gpus) if inputs.run_tools else None)
    if nccl_text is not None:
        result = parse_nccl_tests(nccl_text, str(inputs.nccl_tests_log or "all_reduce_perf"))
        data["nccl_tests"] = {"peak_busbw_gbyte_s": result.peak_busbw_gbyte_s, "wrong": result.wrong,
                              "avg_busbw_gbyte_s": result.avg_busbw_gbyte_s, "rows": [asdict(r) for r in result.rows]}
        found += judge.nccl_tests_checks(result, config.preflight)
    perf_text = _read_log(inputs.perftest_log) if inputs.perftest_log else (
        _loopback(hosts[0], config) if inputs.run_tools else None)
    if perf_text is not None:
        rows = parse_perftest(perf_text, str(inputs.perftest_log or "ib_write_bw"))
        data["perftest"] = [asdict(r) for r in rows]
        found.append(judge.perftest_check(rows, config.preflight))
    return found


def _loopback(host: Mapping[str, Any], config: RunConfig) -> str | None:
    active = [p for p in host["rdma_ports"] if p["state"].endswith("ACTIVE")]
    if not active:
        return None
    raw = config.slurm.env.get("NCCL_IB_GID_INDEX", "")
    return run_ib_write_bw_loopback(active[0]["device"], int(raw) if raw.isdigit() else None)


def judge_report(config: RunConfig, hosts: list[dict[str, Any]], pairs: list[dict[str, Any]] | None,
                 nccl: dict[str, Any] | None, inputs: PreflightInputs, world_size: int) -> PreflightReport:
    """Rank 0: turn gathered measurements into checks."""
    data: dict[str, Any] = {"world_size": world_size, "hosts": hosts, "mpi_pairs": pairs or [], "nccl": nccl}
    found = judge.inventory_checks(hosts, config.slurm.gpus_per_node)
    found += judge.rdma_checks(hosts, config.preflight, config.slurm.env)
    found += judge.mpi_checks(pairs, world_size, config.preflight)
    why = "no CUDA GPU" if not any(h["gpus"] for h in hosts) else "needs 2+ ranks with one GPU each"
    found.append(judge.busbw_check("nccl all-reduce (torch.distributed)", nccl["busbw_gbyte_s"] if nccl else None,
                                   config.preflight, why))
    found += _tool_checks(hosts, config, inputs, data)
    return PreflightReport(found, data)


def _nccl_probe(config: RunConfig, rank: int, size: int, mpi: Any, has_gpu: bool) -> dict[str, Any] | None:
    """NCCL all-reduce over all ranks when every rank's host has a GPU (decided collectively)."""
    if size < 2 or not all(mpi.allgather_flags(has_gpu)):
        return None
    from harness.network import nccl_probe  # torch: only loaded when GPUs take part

    master = mpi.broadcast((socket.gethostname(), 29500 + os.getpid() % 1000) if rank == 0 else None)
    result = nccl_probe.all_reduce_busbw(rank, size, master[0], master[1], config.preflight.nccl_bytes)
    return asdict(result)


def run_preflight(config: RunConfig, inputs: PreflightInputs = PreflightInputs()) -> PreflightReport | None:
    """Measure and judge; returns the report on rank 0 and None on the other ranks."""
    if not under_mpi():
        inventory = asdict(host_inventory(0, inputs.sysfs_root))
        return judge_report(config, [inventory], None, None, inputs, 1)
    from harness.network import mpi_probe  # mpi4py: only under an MPI launcher

    rank, size = mpi_probe.world()
    mine = host_inventory(rank, inputs.sysfs_root)
    hosts = mpi_probe.gather(asdict(mine))
    limits = config.preflight
    pairs = mpi_probe.all_pairs(limits.mpi_message_bytes, limits.mpi_iterations)
    nccl = _nccl_probe(config, rank, size, mpi_probe, bool(mine.gpus))
    if rank != 0 or hosts is None:
        return None
    return judge_report(config, hosts, [asdict(p) for p in pairs or []], nccl, inputs, size)


def write_report(report: PreflightReport, path: Path) -> None:
    """The report as JSON (atomic write)."""
    write_json_atomic(path, report.to_json())
