"""RDMA/RoCE and NIC counter snapshots from sysfs (or `rdma statistic`), their deltas, and JSON round-trips.

Sources, per host:
    /sys/class/infiniband/<dev>/ports/<port>/counters/*      IB port counters (port_xmit_data counts 4-byte words)
    /sys/class/infiniband/<dev>/ports/<port>/hw_counters/*   vendor counters (CNP, ECN, retransmits...)
    `rdma statistic show`                                    the same hw counters, when sysfs has none
    /sys/class/net/<if>/statistics/*                         NIC byte/packet/error counters
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError

# Files under hw_counters that hold settings, not counters.
_NOT_COUNTERS = frozenset({"lifespan"})
WORD_BYTES = 4  # port_xmit_data / port_rcv_data count 32-bit words (IBA PortCounters)


@dataclass(frozen=True)
class CounterSnapshot:
    """Every counter of one host at one instant; keys are 'dev/port' (RDMA) and interface names (NIC)."""

    host: str
    taken_ns: int
    rdma: dict[str, dict[str, int]] = field(default_factory=dict)
    nic: dict[str, dict[str, int]] = field(default_factory=dict)
    rdma_source: str = "none"


@dataclass(frozen=True)
class CounterDelta:
    """after - before for one host; counters that went backwards (reset, wrap) are listed, not subtracted."""

    host: str
    seconds: float
    rdma: dict[str, dict[str, int]] = field(default_factory=dict)
    nic: dict[str, dict[str, int]] = field(default_factory=dict)
    resets: list[str] = field(default_factory=list)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _read_dir(folder: Path) -> dict[str, int]:
    if not folder.is_dir():
        return {}
    found = {}
    for entry in sorted(folder.iterdir()):
        value = _read_int(entry) if entry.name not in _NOT_COUNTERS else None
        if value is not None:
            found[entry.name] = value
    return found


def read_rdma_sysfs(sysfs_root: Path) -> dict[str, dict[str, int]]:
    """counters + hw_counters of every RDMA port; a hw counter whose name clashes gets an 'hw_counters/' prefix."""
    ports: dict[str, dict[str, int]] = {}
    for port in sorted((sysfs_root / "class" / "infiniband").glob("*/ports/*")):
        values = _read_dir(port / "counters")
        for name, value in _read_dir(port / "hw_counters").items():
            values[f"hw_counters/{name}" if name in values else name] = value
        ports[f"{port.parent.parent.name}/{port.name}"] = values
    return ports


def read_nic_sysfs(sysfs_root: Path) -> dict[str, dict[str, int]]:
    """statistics/* of every network interface except loopback."""
    return {iface.name: _read_dir(iface / "statistics")
            for iface in sorted((sysfs_root / "class" / "net").glob("*")) if iface.name != "lo"}


def parse_rdma_statistic(text: str) -> dict[str, dict[str, int]]:
    """`rdma statistic show` lines: 'link mlx5_0/1 name value name value ...' -> {'mlx5_0/1': {...}}."""
    ports: dict[str, dict[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if words[0] != "link" or len(words) < 2 or len(words) % 2:
            raise InputError(f"rdma statistic line {number} is not 'link DEV/PORT name value ...': {line!r}")
        try:
            ports[words[1]] = {words[i]: int(words[i + 1]) for i in range(2, len(words), 2)}
        except ValueError:
            raise InputError(f"rdma statistic line {number} holds a non-integer value: {line!r}") from None
    return ports


def _rdma_tool() -> dict[str, dict[str, int]]:
    if shutil.which("rdma") is None:
        return {}
    try:
        done = subprocess.run(["rdma", "statistic", "show"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_rdma_statistic(done.stdout) if done.returncode == 0 else {}


def snapshot(sysfs_root: Path = Path("/sys"), host: str | None = None) -> CounterSnapshot:
    """Read this host's counters now; falls back to `rdma statistic` only on the live /sys."""
    rdma, source = read_rdma_sysfs(sysfs_root), "sysfs"
    if not any(rdma.values()) and sysfs_root == Path("/sys"):
        rdma, source = _rdma_tool(), "rdma statistic"
    return CounterSnapshot(host or socket.gethostname(), time.time_ns(), rdma, read_nic_sysfs(sysfs_root),
                           source if rdma else "none")


def _subtract(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], kind: str,
              resets: list[str]) -> dict[str, dict[str, int]]:
    result: dict[str, dict[str, int]] = {}
    for key, values in after.items():
        old = before.get(key, {})
        result[key] = {}
        for name, value in values.items():
            if name not in old:
                continue
            if value < old[name]:
                resets.append(f"{kind} {key} {name}: {old[name]} -> {value}")
                continue
            result[key][name] = value - old[name]
    return result


def delta(before: CounterSnapshot, after: CounterSnapshot) -> CounterDelta:
    """Per-counter increase between two snapshots of the same host."""
    if before.host != after.host:
        raise InputError(f"counter snapshots come from different hosts ({before.host} vs {after.host})",
                         hint="subtract snapshots host by host")
    resets: list[str] = []
    rdma = _subtract(before.rdma, after.rdma, "rdma", resets)
    nic = _subtract(before.nic, after.nic, "nic", resets)
    return CounterDelta(after.host, max(after.taken_ns - before.taken_ns, 0) / 1e9, rdma, nic, resets)


def to_json(item: CounterSnapshot | CounterDelta) -> dict[str, Any]:
    """A JSON-ready dict."""
    return asdict(item)


def _counters(data: Any, what: str) -> dict[str, dict[str, int]]:
    if not isinstance(data, dict) or not all(
            isinstance(v, dict) and all(isinstance(n, int) and not isinstance(n, bool) for n in v.values())
            for v in data.values()):
        raise InputError(f"{what} is not a mapping of name -> {{counter: integer}}")
    return {str(k): {str(n): int(c) for n, c in v.items()} for k, v in data.items()}


def snapshot_from_json(data: Any) -> CounterSnapshot:
    """Inverse of to_json for a snapshot; InputError on malformed data."""
    if not isinstance(data, dict) or not isinstance(data.get("host"), str) or not isinstance(data.get("taken_ns"), int):
        raise InputError("counter snapshot lacks 'host' (string) or 'taken_ns' (integer)")
    return CounterSnapshot(data["host"], data["taken_ns"], _counters(data.get("rdma", {}), "rdma"),
                           _counters(data.get("nic", {}), "nic"), str(data.get("rdma_source", "none")))


def delta_from_json(data: Any) -> CounterDelta:
    """Inverse of to_json for a delta; InputError on malformed data."""
    if not isinstance(data, dict) or not isinstance(data.get("host"), str):
        raise InputError("counter delta lacks 'host' (string)")
    resets = data.get("resets", [])
    if not isinstance(resets, list):
        raise InputError("counter delta 'resets' is not a list")
    return CounterDelta(data["host"], float(data.get("seconds", 0.0)), _counters(data.get("rdma", {}), "rdma"),
                        _counters(data.get("nic", {}), "nic"), [str(r) for r in resets])
