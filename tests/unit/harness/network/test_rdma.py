"""RDMA port inventory read from the recorded sysfs trees."""

from __future__ import annotations

from pathlib import Path

from harness.network.rdma import Gid, read_rdma_ports

SYSFS = Path(__file__).resolve().parents[3] / "data" / "sysfs"


def test_ports_state_link_layer_and_roce_v2_gids() -> None:
    active, down = read_rdma_ports(SYSFS / "roce_before")
    assert (active.device, active.port, active.link_layer, active.rate, active.firmware) == (
        "mlx5_0", 1, "Ethernet", "100 Gb/sec (4X EDR)", "22.36.1010")
    assert active.active and not down.active
    assert [g.index for g in active.gids] == [0, 1, 2, 3]  # the all-zero GID 4 is not populated
    assert active.roce_v2_gids == [Gid(1, "fe80:0000:0000:0000:ba59:9fff:fe12:3456", "RoCE v2", "eth2"),
                                   Gid(3, "0000:0000:0000:0000:0000:ffff:0a00:0001", "RoCE v2", "eth2")]
    assert down.gids == ()


def test_a_host_without_rdma_has_no_ports() -> None:
    assert read_rdma_ports(SYSFS / "ethernet_only") == []
