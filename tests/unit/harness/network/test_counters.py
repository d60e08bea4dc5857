"""Counter snapshots from recorded sysfs trees (tests/data/sysfs), deltas, `rdma statistic` parsing, JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.network.counters import (
    CounterSnapshot,
    delta,
    delta_from_json,
    parse_rdma_statistic,
    read_nic_sysfs,
    read_rdma_sysfs,
    snapshot,
    snapshot_from_json,
    to_json,
)

SYSFS = Path(__file__).resolve().parents[3] / "data" / "sysfs"


def test_rdma_ports_carry_port_and_hw_counters_but_not_settings() -> None:
    ports = read_rdma_sysfs(SYSFS / "roce_before")
    assert sorted(ports) == ["mlx5_0/1", "mlx5_1/1"]
    assert ports["mlx5_0/1"]["port_xmit_data"] == 1_000_000
    assert ports["mlx5_0/1"]["np_cnp_sent"] == 3
    assert "lifespan" not in ports["mlx5_0/1"]
    assert ports["mlx5_1/1"] == {"port_rcv_data": 0, "port_xmit_data": 0}


def test_nic_statistics_skip_loopback() -> None:
    nics = read_nic_sysfs(SYSFS / "roce_before")
    assert sorted(nics) == ["eth0", "eth2"]
    assert (nics["eth0"]["tx_bytes"], nics["eth0"]["rx_dropped"]) == (10_000, 1)


def test_a_host_without_rdma_has_only_nic_counters() -> None:
    taken = snapshot(SYSFS / "ethernet_only", host="cpu-node")
    assert (taken.rdma, taken.rdma_source, sorted(taken.nic)) == ({}, "none", ["ens5"])


def test_delta_subtracts_counter_by_counter() -> None:
    before = snapshot(SYSFS / "roce_before", host="n1")
    after = dataclasses.replace(snapshot(SYSFS / "roce_after", host="n1"), taken_ns=before.taken_ns + 2_000_000_000)
    change = delta(before, after)
    assert change.seconds == 2.0
    assert change.rdma["mlx5_0/1"]["port_xmit_data"] == 250_000_000
    assert change.rdma["mlx5_0/1"]["np_cnp_sent"] == 120
    assert change.nic["eth0"] == {"rx_bytes": 2_500_000, "rx_dropped": 0, "rx_errors": 0, "rx_packets": 2600,
                                  "tx_bytes": 3_000_000, "tx_dropped": 0, "tx_errors": 0, "tx_packets": 3000}
    assert change.resets == []


def test_a_counter_that_went_backwards_is_reported_not_subtracted() -> None:
    before = CounterSnapshot("n1", 0, {"mlx5_0/1": {"port_xmit_data": 900, "np_cnp_sent": 1}})
    after = CounterSnapshot("n1", 1, {"mlx5_0/1": {"port_xmit_data": 100, "np_cnp_sent": 4}})
    change = delta(before, after)
    assert change.rdma == {"mlx5_0/1": {"np_cnp_sent": 3}}
    assert change.resets == ["rdma mlx5_0/1 port_xmit_data: 900 -> 100"]


def test_snapshots_of_different_hosts_do_not_subtract() -> None:
    with pytest.raises(InputError, match="different hosts"):
        delta(CounterSnapshot("a", 0), CounterSnapshot("b", 1))


def test_snapshot_and_delta_survive_a_json_round_trip() -> None:
    before, after = snapshot(SYSFS / "roce_before", "n1"), snapshot(SYSFS / "roce_after", "n1")
    assert snapshot_from_json(json.loads(json.dumps(to_json(before)))) == before
    change = delta(before, after)
    assert delta_from_json(json.loads(json.dumps(to_json(change)))) == change


@pytest.mark.parametrize("data", [[], {"host": "n1"}, {"host": "n1", "taken_ns": 1, "nic": {"eth0": {"x": "1"}}},
                                  {"host": 3, "taken_ns": 1}])
def test_malformed_snapshot_json_is_an_input_error(data: object) -> None:
    with pytest.raises(InputError):
        snapshot_from_json(data)


def test_rdma_statistic_output_parses_per_link() -> None:
    ports = parse_rdma_statistic((SYSFS / "rdma_statistic.txt").read_text())
    assert sorted(ports) == ["mlx5_0/1", "mlx5_1/1"]
    assert (ports["mlx5_0/1"]["np_cnp_sent"], ports["mlx5_0/1"]["roce_adp_retrans"]) == (123, 2)
    assert ports["mlx5_1/1"] == {"rx_write_requests": 0, "rx_read_requests": 0, "out_of_sequence": 0,
                                 "np_cnp_sent": 0}


@pytest.mark.parametrize("line", ["port mlx5_0/1 a 1", "link mlx5_0/1 a", "link mlx5_0/1 a x"])
def test_malformed_rdma_statistic_lines_name_the_line(line: str) -> None:
    with pytest.raises(InputError, match="line 1"):
        parse_rdma_statistic(line)
