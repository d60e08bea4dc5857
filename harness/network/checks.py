"""Preflight verdicts: measurements and inventories -> list[Check], judged against PreflightConfig (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.network.parsers import NcclTestsResult, PerftestRow
from harness.sections.preflight import PreflightConfig
from harness.types import Check, CheckStatus

PASS, FAIL, WARN = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.WARN


def inventory_checks(hosts: Sequence[Mapping[str, Any]], gpus_per_node: int) -> list[Check]:
    """One line per host; FAIL when a host has fewer GPUs than slurm.gpus_per_node asks for."""
    checks = []
    for inv in sorted({h["host"]: h for h in hosts}.values(), key=lambda h: h["host"]):
        gpus = inv["gpus"]
        detail = (f"{inv['cpus']} CPUs, {inv['memory_gib']} GiB, {len(gpus)} GPU(s)"
                  + (f" ({gpus[0]['name']}, driver {gpus[0].get('driver', '?')})" if gpus else "")
                  + f", {len(inv['rdma_ports'])} RDMA port(s)")
        short = len(gpus) < gpus_per_node
        checks.append(Check(f"host {inv['host']}", FAIL if short else PASS, detail,
                            f"slurm.gpus_per_node is {gpus_per_node}; this host shows {len(gpus)}" if short else ""))
    return checks


def _gid_kind_ok(kind: str, wanted: str) -> bool:
    return wanted == "any" or (kind == wanted) or (wanted == "RoCE v1" and kind == "IB/RoCE v1")


def _port_checks(host: str, port: Mapping[str, Any], limits: PreflightConfig,
                 gid_index: int | None) -> list[Check]:
    name = f"rdma {host} {port['device']}/{port['port']}"
    state = f"{port['state']}, {port['phys_state']}, {port['link_layer']}, {port['rate']}"
    if not (port["state"].endswith("ACTIVE") and port["phys_state"].endswith("LinkUp")):
        return [Check(name, WARN, state, "unused ports may stay down; exclude them with NCCL_IB_HCA")]
    checks = [Check(name, PASS, state)]
    if port["link_layer"] != "Ethernet" or limits.roce_version in ("IB", "any"):
        return checks
    usable = [g for g in port["gids"] if _gid_kind_ok(g["kind"], limits.roce_version)]
    if not usable:
        checks.append(Check(f"{name} GID", FAIL, f"no {limits.roce_version} GID",
                            "give the port's netdev an IP address; check the RoCE mode (cma_roce_mode)"))
    elif gid_index is not None and gid_index not in {g["index"] for g in usable}:
        checks.append(Check(f"{name} GID", FAIL, f"NCCL_IB_GID_INDEX={gid_index} is not a {limits.roce_version} GID",
                            f"set slurm.env.NCCL_IB_GID_INDEX to one of {[g['index'] for g in usable]}"))
    else:
        indices = ", ".join(f"{g['index']} ({g['netdev'] or '?'})" for g in usable)
        checks.append(Check(f"{name} GID", PASS, f"{limits.roce_version} GID index {indices}"))
    return checks


def rdma_checks(hosts: Sequence[Mapping[str, Any]], limits: PreflightConfig, env: Mapping[str, str]) -> list[Check]:
    """Link state and RoCE GIDs per port; FAIL when require_rdma and a host has no ACTIVE port."""
    raw_index = env.get("NCCL_IB_GID_INDEX", "")
    gid_index = int(raw_index) if raw_index.isdigit() else None
    checks: list[Check] = []
    for inv in sorted({h["host"]: h for h in hosts}.values(), key=lambda h: h["host"]):
        ports = inv["rdma_ports"]
        for port in ports:
            checks += _port_checks(inv["host"], port, limits, gid_index)
        active = any(p["state"].endswith("ACTIVE") for p in ports)
        if not active:
            fix = "load the RDMA driver (mlx5_ib) or set preflight.require_rdma=false" if limits.require_rdma else ""
            checks.append(Check(f"rdma {inv['host']}", FAIL if limits.require_rdma else WARN,
                                "no ACTIVE RDMA port" if ports else "no RDMA device in /sys/class/infiniband", fix))
    return checks


def _limit(value: float, limit: float | None, above_fails: bool) -> CheckStatus:
    if limit is None:
        return PASS
    return FAIL if (value > limit if above_fails else value < limit) else PASS


def mpi_checks(pairs: Sequence[Mapping[str, Any]] | None, world_size: int, limits: PreflightConfig) -> list[Check]:
    """Reachability (every pair answered), latency and bandwidth per rank pair."""
    if not pairs:
        wanted = world_size > 1 or limits.max_mpi_latency_us or limits.min_mpi_bandwidth_gbit_s
        return [Check("mpi all-pairs", WARN if wanted else PASS, f"not measured: {world_size} rank(s)",
                      "run under `mpirun -np N` or `srun --mpi=pmix` to measure the fabric" if wanted else "")]
    expected = world_size * (world_size - 1) // 2
    checks = [Check("mpi all-pairs", PASS if len(pairs) == expected else FAIL,
                    f"{len(pairs)}/{expected} rank pairs answered")]
    for pair in pairs:
        status = max(_limit(pair["latency_us"], limits.max_mpi_latency_us, True),
                     _limit(pair["bandwidth_gbit_s"], limits.min_mpi_bandwidth_gbit_s, False), key=_rank)
        fix = "" if status is PASS else (f"limits: latency <= {limits.max_mpi_latency_us} us, bandwidth >= "
                                         f"{limits.min_mpi_bandwidth_gbit_s} Gb/s; check the link between these hosts")
        checks.append(Check(f"mpi {pair['rank_a']}({pair['host_a']})<->{pair['rank_b']}({pair['host_b']})", status,
                            f"{pair['latency_us']:.1f} us, {pair['bandwidth_gbit_s']:.2f} Gb/s", fix))
    return checks


def _rank(status: CheckStatus) -> int:
    return {PASS: 0, CheckStatus.MANUAL: 1, WARN: 2, FAIL: 3}[status]


def busbw_check(name: str, busbw: float | None, limits: PreflightConfig, why_missing: str = "") -> Check:
    """NCCL bus bandwidth (GB/s) against min_nccl_busbw_gbyte_s."""
    if busbw is None:
        return Check(name, WARN if limits.min_nccl_busbw_gbyte_s else PASS, f"not measured: {why_missing}")
    status = _limit(busbw, limits.min_nccl_busbw_gbyte_s, False)
    return Check(name, status, f"bus bandwidth {busbw:.2f} GB/s",
                 "" if status is PASS else f"below preflight.min_nccl_busbw_gbyte_s={limits.min_nccl_busbw_gbyte_s}; "
                                           "check NCCL_IB_HCA/NCCL_IB_GID_INDEX and NCCL_DEBUG=INFO output")


def nccl_tests_checks(result: NcclTestsResult, limits: PreflightConfig) -> list[Check]:
    """nccl-tests: no data errors, and the peak bus bandwidth over sizes against the limit."""
    checks = [busbw_check("nccl-tests peak", result.peak_busbw_gbyte_s, limits)]
    if result.wrong:
        checks.append(Check("nccl-tests validation", FAIL, f"{result.wrong} wrong result(s)",
                            "the all-reduce produced wrong data: check GPUs, drivers and the fabric"))
    return checks


def perftest_check(rows: Sequence[PerftestRow], limits: PreflightConfig) -> Check:
    """ib_write_bw: the best average bandwidth over sizes against min_ib_write_bw_gbit_s."""
    best = max(rows, key=lambda r: r.average_gbit_s)
    status = _limit(best.average_gbit_s, limits.min_ib_write_bw_gbit_s, False)
    return Check("ib_write_bw", status, f"{best.average_gbit_s:.2f} Gb/s average at {best.size_bytes} B",
                 "" if status is PASS else f"below preflight.min_ib_write_bw_gbit_s={limits.min_ib_write_bw_gbit_s}")
