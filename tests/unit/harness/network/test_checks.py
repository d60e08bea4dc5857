"""Preflight verdicts against PreflightConfig thresholds (pure functions over gathered data)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.network.checks import busbw_check, inventory_checks, mpi_checks, rdma_checks
from harness.network.inventory import host_inventory
from harness.sections.preflight import PreflightConfig
from harness.types import CheckStatus

SYSFS = Path(__file__).resolve().parents[3] / "data" / "sysfs"
PASS, FAIL, WARN = CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.WARN


def _host(tree: str, name: str = "n1", gpus: int = 0) -> dict[str, Any]:
    data = asdict(host_inventory(0, SYSFS / tree))
    return data | {"host": name, "gpus": [{"name": "H100", "driver": "550"}] * gpus}


def _pair(a: int, b: int, latency: float, bandwidth: float) -> dict[str, Any]:
    return {"rank_a": a, "rank_b": b, "host_a": f"n{a}", "host_b": f"n{b}", "latency_us": latency,
            "bandwidth_gbit_s": bandwidth}


def test_a_host_with_fewer_gpus_than_requested_fails() -> None:
    checks = inventory_checks([_host("roce_before", "n1", 8), _host("roce_before", "n2", 4)], gpus_per_node=8)
    assert [(c.name, c.status) for c in checks] == [("host n1", PASS), ("host n2", FAIL)]
    assert checks[1].fix == "slurm.gpus_per_node is 8; this host shows 4"


def test_roce_ports_report_v2_gid_indices_and_warn_on_down_ports() -> None:
    checks = rdma_checks([_host("roce_before")], PreflightConfig(), {})
    assert [(c.name, c.status, c.detail) for c in checks] == [
        ("rdma n1 mlx5_0/1", PASS, "4: ACTIVE, 5: LinkUp, Ethernet, 100 Gb/sec (4X EDR)"),
        ("rdma n1 mlx5_0/1 GID", PASS, "RoCE v2 GID index 1 (eth2), 3 (eth2)"),
        ("rdma n1 mlx5_1/1", WARN, "1: DOWN, 3: Disabled, Ethernet, 10 Gb/sec (4X SDR)"),
    ]


def test_a_gid_index_that_is_not_roce_v2_fails_with_the_usable_ones() -> None:
    (_, gid, _) = rdma_checks([_host("roce_before")], PreflightConfig(), {"NCCL_IB_GID_INDEX": "0"})
    assert (gid.status, gid.fix) == (FAIL, "set slurm.env.NCCL_IB_GID_INDEX to one of [1, 3]")


def test_missing_rdma_warns_by_default_and_fails_when_required() -> None:
    host = _host("ethernet_only")
    (warned,) = rdma_checks([host], PreflightConfig(), {})
    (failed,) = rdma_checks([host], PreflightConfig(require_rdma=True), {})
    assert (warned.status, failed.status) == (WARN, FAIL)
    assert "require_rdma" in failed.fix


def test_mpi_pairs_are_judged_against_latency_and_bandwidth_limits() -> None:
    limits = PreflightConfig(max_mpi_latency_us=10, min_mpi_bandwidth_gbit_s=100)
    pairs = [_pair(0, 1, 3.0, 180.0), _pair(0, 2, 25.0, 190.0), _pair(1, 2, 4.0, 20.0)]
    checks = mpi_checks(pairs, 3, limits)
    assert [(c.name, c.status) for c in checks] == [
        ("mpi all-pairs", PASS), ("mpi 0(n0)<->1(n1)", PASS), ("mpi 0(n0)<->2(n2)", FAIL), ("mpi 1(n1)<->2(n2)", FAIL)]
    assert checks[2].detail == "25.0 us, 190.00 Gb/s"


def test_a_missing_pair_fails_reachability() -> None:
    (reach, _) = mpi_checks([_pair(0, 1, 3.0, 100.0)], 3, PreflightConfig())
    assert (reach.status, reach.detail) == (FAIL, "1/3 rank pairs answered")


def test_unmeasured_mpi_passes_alone_but_warns_when_limits_were_set() -> None:
    assert mpi_checks(None, 1, PreflightConfig())[0].status is PASS
    assert mpi_checks(None, 1, PreflightConfig(max_mpi_latency_us=5))[0].status is WARN


def test_busbw_below_the_limit_fails_and_unmeasured_warns_only_with_a_limit() -> None:
    limits = PreflightConfig(min_nccl_busbw_gbyte_s=100)
    assert busbw_check("nccl", 150.0, limits).status is PASS
    assert busbw_check("nccl", 59.2, limits).status is FAIL
    assert busbw_check("nccl", None, limits, "no GPU").status is WARN
    assert busbw_check("nccl", None, PreflightConfig(), "no GPU").detail == "not measured: no GPU"
