"""Counter capture around a run: network_counters_{before,after,delta}.json in the run dir, and their summary.

The runner calls `capture(run_dir, "before")` before LoadGen starts and `capture(run_dir, "after")` when it
ends. Under MPI, every rank takes `snapshot()` and the LoadGen rank passes the gathered snapshots (one per
host is kept) as `gathered`; in one process the local host is snapshotted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from harness.artifacts import write_json_atomic
from harness.errors import InputError
from harness.network.counters import (
    WORD_BYTES,
    CounterDelta,
    CounterSnapshot,
    delta,
    delta_from_json,
    snapshot,
    snapshot_from_json,
    to_json,
)

Phase = Literal["before", "after"]
BEFORE, AFTER, DELTA = "network_counters_before.json", "network_counters_after.json", "network_counters_delta.json"
# hw counters worth a line in the summary when they moved: congestion control and transport trouble.
CONGESTION = ("np_cnp_sent", "rp_cnp_handled", "np_ecn_marked_roce_packets", "out_of_sequence", "packet_seq_err",
              "roce_adp_retrans", "local_ack_timeout_err", "rnr_nak_retry_err", "port_xmit_discards",
              "port_rcv_errors", "symbol_error", "link_downed")


def _file(phase: str) -> str:
    return {"before": BEFORE, "after": AFTER}[phase]


def _by_host(snapshots: Sequence[CounterSnapshot]) -> dict[str, CounterSnapshot]:
    hosts: dict[str, CounterSnapshot] = {}
    for item in snapshots:
        hosts.setdefault(item.host, item)  # ranks on one host read the same counters
    return hosts


def _read_snapshots(path: Path) -> dict[str, CounterSnapshot]:
    try:
        data = json.loads(path.read_text())
        return {host: snapshot_from_json(item) for host, item in data["hosts"].items()}
    except FileNotFoundError:
        raise InputError(f"{path} is missing; capture 'before' must run before 'after'") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{path} is not a counter snapshot file ({err})") from None


def capture(run_dir: Path, phase: Phase, gathered: Sequence[CounterSnapshot] | None = None,
            sysfs_root: Path = Path("/sys")) -> Path:
    """Write network_counters_<phase>.json; after 'after', also network_counters_delta.json. Returns the last file."""
    if phase not in ("before", "after"):
        raise InputError(f"counter capture phase {phase!r} is not 'before' or 'after'")
    hosts = _by_host(gathered if gathered else [snapshot(sysfs_root)])
    path = run_dir / _file(phase)
    write_json_atomic(path, {"phase": phase, "hosts": {h: to_json(s) for h, s in hosts.items()}})
    if phase == "before":
        return path
    before = _read_snapshots(run_dir / BEFORE)
    deltas = [delta(before[host], item) for host, item in hosts.items() if host in before]
    missing = sorted(set(hosts) ^ set(before))
    write_json_atomic(run_dir / DELTA, {"hosts": {d.host: to_json(d) for d in deltas},
                                        "hosts_without_pair": missing, "summary": summary_text(deltas)})
    return run_dir / DELTA


def read_deltas(run_dir: Path) -> list[CounterDelta]:
    """The per-host deltas of a run directory (empty when no capture was made)."""
    path = run_dir / DELTA
    if not path.exists():
        return []
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return [delta_from_json(item) for item in data["hosts"].values()]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{path} is not a counter delta file ({err})") from None


def _gbps(nbytes: float, seconds: float) -> str:
    return f"{nbytes * 8 / seconds / 1e9:.2f}" if seconds > 0 else "-"


def _rdma_rows(item: CounterDelta) -> list[str]:
    rows = []
    for port, values in sorted(item.rdma.items()):
        tx, rx = values.get("port_xmit_data", 0) * WORD_BYTES, values.get("port_rcv_data", 0) * WORD_BYTES
        moved = [f"{name} {values[name]}" for name in CONGESTION if values.get(name)]
        rows.append(f"| {item.host} | {port} | {tx:,} | {rx:,} | {_gbps(tx, item.seconds)} | "
                    f"{_gbps(rx, item.seconds)} | {', '.join(moved) or '-'} |")
    return rows


def _nic_rows(item: CounterDelta) -> list[str]:
    rows = []
    for iface, values in sorted(item.nic.items()):
        tx, rx = values.get("tx_bytes", 0), values.get("rx_bytes", 0)
        trouble = [f"{name} {values[name]}" for name in ("tx_errors", "rx_errors", "tx_dropped", "rx_dropped")
                   if values.get(name)]
        rows.append(f"| {item.host} | {iface} | {tx:,} | {rx:,} | {_gbps(tx, item.seconds)} | "
                    f"{_gbps(rx, item.seconds)} | {', '.join(trouble) or '-'} |")
    return rows


def summary_text(deltas: Sequence[CounterDelta]) -> str:
    """Markdown the measurements README can include: RDMA and NIC traffic per host during the run."""
    if not deltas:
        return "No network counters were captured for this run.\n"
    seconds = max(d.seconds for d in deltas)
    lines = [f"Network traffic during the run ({len(deltas)} host(s), {seconds:.1f} s), from RDMA/NIC counters.", ""]
    rdma = [row for d in deltas for row in _rdma_rows(d)]
    if rdma:
        lines += ["| host | RDMA port | bytes sent | bytes received | Gb/s out | Gb/s in | congestion/errors |",
                  "|---|---|---:|---:|---:|---:|---|", *rdma, ""]
    else:
        lines += ["No RDMA device counters were found.", ""]
    lines += ["| host | interface | bytes sent | bytes received | Gb/s out | Gb/s in | errors/drops |",
              "|---|---|---:|---:|---:|---:|---|", *[row for d in deltas for row in _nic_rows(d)]]
    resets = [f"{d.host}: {r}" for d in deltas for r in d.resets]
    if resets:
        lines += ["", "Counters that went backwards (reset or wrapped; left out): " + "; ".join(resets)]
    return "\n".join(lines) + "\n"
