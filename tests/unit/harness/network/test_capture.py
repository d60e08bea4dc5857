"""capture(run_dir, phase): before/after/delta files in a run dir, per host, and the README summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.network.capture import AFTER, BEFORE, DELTA, capture, read_deltas, summary_text
from harness.network.counters import snapshot

SYSFS = Path(__file__).resolve().parents[3] / "data" / "sysfs"


def test_before_then_after_writes_three_files_and_the_delta(tmp_path: Path) -> None:
    assert capture(tmp_path, "before", sysfs_root=SYSFS / "roce_before") == tmp_path / BEFORE
    assert capture(tmp_path, "after", sysfs_root=SYSFS / "roce_after") == tmp_path / DELTA
    assert (tmp_path / AFTER).exists()
    (change,) = read_deltas(tmp_path)
    assert change.rdma["mlx5_0/1"]["port_rcv_data"] == 240_000_000
    data = json.loads((tmp_path / DELTA).read_text())
    assert data["hosts_without_pair"] == []
    assert "| mlx5_0/1 | 1,000,000,000 | 960,000,000 |" in data["summary"]


def test_gathered_snapshots_keep_one_per_host_and_flag_unpaired_hosts(tmp_path: Path) -> None:
    before = [snapshot(SYSFS / "roce_before", h) for h in ("n1", "n1", "n2")]
    after = [snapshot(SYSFS / "roce_after", h) for h in ("n1", "n3")]
    capture(tmp_path, "before", gathered=before)
    capture(tmp_path, "after", gathered=after)
    assert json.loads((tmp_path / BEFORE).read_text())["hosts"].keys() == {"n1", "n2"}
    assert [d.host for d in read_deltas(tmp_path)] == ["n1"]
    assert json.loads((tmp_path / DELTA).read_text())["hosts_without_pair"] == ["n2", "n3"]


def test_after_without_before_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="capture 'before' must run before 'after'"):
        capture(tmp_path, "after", sysfs_root=SYSFS / "roce_after")


def test_unknown_phase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not 'before' or 'after'"):
        capture(tmp_path, "during", sysfs_root=SYSFS / "roce_after")  # type: ignore[arg-type]  # bad on purpose


def test_summary_lists_congestion_counters_that_moved_and_hosts_without_rdma(tmp_path: Path) -> None:
    capture(tmp_path, "before", gathered=[snapshot(SYSFS / "roce_before", "n1")])
    capture(tmp_path, "after", gathered=[snapshot(SYSFS / "roce_after", "n1")])
    text = summary_text(read_deltas(tmp_path))
    assert "np_cnp_sent 120, rp_cnp_handled 118, np_ecn_marked_roce_packets 121, out_of_sequence 7" in text
    assert "| n1 | mlx5_1/1 | 0 | 0 |" in text
    cpu_only = tmp_path / "cpu"
    cpu_only.mkdir()
    capture(cpu_only, "before", sysfs_root=SYSFS / "ethernet_only")
    capture(cpu_only, "after", sysfs_root=SYSFS / "ethernet_only")
    assert "No RDMA device counters were found." in summary_text(read_deltas(cpu_only))


def test_a_run_without_capture_has_no_deltas_and_says_so(tmp_path: Path) -> None:
    assert read_deltas(tmp_path) == []
    assert summary_text([]) == "No network counters were captured for this run.\n"


def test_the_live_host_can_be_captured(tmp_path: Path) -> None:
    """The real /sys of this machine: at least the NIC statistics exist."""
    capture(tmp_path, "before")
    capture(tmp_path, "after")
    (change,) = read_deltas(tmp_path)
    assert change.nic
