"""NICs and RDMA devices from sysfs (/sys/class/net, /sys/class/infiniband) for the system description.

An RDMA port whose link layer is Ethernet is RoCE (v2 when its GID table lists "RoCE v2"); one whose
link layer is InfiniBand is IB. Plain NICs are the physical /sys/class/net entries (those with a
device link) that no RDMA port claims.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RATE = re.compile(r"([\d.]+)\s*Gb/sec")


@dataclass(frozen=True)
class Nic:
    """One network port: name, speed in Gb/s (0 = unknown) and its fabric (Ethernet, RoCE v2, InfiniBand)."""

    name: str
    gbps: float
    fabric: str


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def rdma_ports(sys_root: Path) -> list[tuple[Nic, set[str]]]:
    """Each RDMA device's first active port, with the netdev names it backs."""
    found = []
    for dev in sorted((sys_root / "class" / "infiniband").glob("*")):
        for port in sorted((dev / "ports").glob("*")):
            layer = _read(port / "link_layer")
            rate = _RATE.search(_read(port / "rate"))
            gbps = float(rate.group(1)) if rate else 0.0
            if layer == "InfiniBand":
                fabric = "InfiniBand"
            else:
                types = {_read(p) for p in (port / "gid_attrs" / "types").glob("*")}
                fabric = "RoCE v2" if "RoCE v2" in types else "RoCE"
            netdevs = {p.name for p in (dev / "device" / "net").glob("*")}
            found.append((Nic(dev.name, gbps, fabric), netdevs))
            break
    return found


def plain_nics(sys_root: Path, claimed: set[str]) -> list[Nic]:
    """Physical Ethernet NICs not backing an RDMA device."""
    nics = []
    for iface in sorted((sys_root / "class" / "net").glob("*")):
        if iface.name == "lo" or iface.name in claimed or not (iface / "device").exists():
            continue
        speed = _read(iface / "speed")
        gbps = int(speed) / 1000 if speed.lstrip("-").isdigit() and int(speed) > 0 else 0.0
        nics.append(Nic(iface.name, gbps, "Ethernet"))
    return nics


def _speed(gbps: float) -> str:
    return f"{gbps:g} Gb/s" if gbps else "unknown speed"


def _describe(nics: list[Nic]) -> str:
    groups = Counter((n.gbps, n.fabric) for n in nics)
    parts = []
    for (gbps, fabric), count in sorted(groups.items(), key=lambda item: (-item[0][0], item[0][1])):
        names = [n.name for n in nics if (n.gbps, n.fabric) == (gbps, fabric)]
        parts.append(f"{count}x {_speed(gbps)} {fabric} ({', '.join(names)})")
    return "; ".join(parts)


def detect_network(sys_root: Path) -> dict[str, Any]:
    """host_network_card_count and host_networking; topology is never detectable."""
    rdma = rdma_ports(sys_root)
    claimed = set().union(*(netdevs for _, netdevs in rdma)) if rdma else set()
    nics = [nic for nic, _ in rdma] + plain_nics(sys_root, claimed)
    if not nics:
        return {}
    found: dict[str, Any] = {"host_network_card_count": _describe(nics)}
    if rdma:
        fabric = Counter(nic.fabric for nic, _ in rdma).most_common(1)[0][0]
        fastest = max(nic.gbps for nic, _ in rdma)
        found["host_networking"] = f"{fabric}, {len(rdma)}x {_speed(fastest)} RDMA"
    else:
        found["host_networking"] = f"Ethernet, {_speed(max(n.gbps for n in nics))}"
    return found
