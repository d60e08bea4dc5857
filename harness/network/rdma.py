"""RDMA device inventory from sysfs: ports, link state, link layer, rate, GIDs with their RoCE version."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_EMPTY_GID = "0000:0000:0000:0000:0000:0000:0000:0000"


@dataclass(frozen=True)
class Gid:
    """One populated GID table entry; `kind` is 'RoCE v2', 'IB/RoCE v1' or '' when unreadable."""

    index: int
    gid: str
    kind: str
    netdev: str


@dataclass(frozen=True)
class RdmaPort:
    """One port of an RDMA device as the kernel reports it."""

    device: str
    port: int
    state: str
    phys_state: str
    link_layer: str
    rate: str
    firmware: str
    gids: tuple[Gid, ...]

    @property
    def active(self) -> bool:
        """The port is ACTIVE (logical) and LinkUp (physical)."""
        return self.state.endswith("ACTIVE") and self.phys_state.endswith("LinkUp")

    @property
    def roce_v2_gids(self) -> list[Gid]:
        """GIDs usable for RoCE v2 (NCCL_IB_GID_INDEX should name one of these)."""
        return [g for g in self.gids if g.kind == "RoCE v2"]


def _text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:  # unpopulated GID attributes fail with EINVAL on a live system
        return ""


def _gids(port: Path) -> tuple[Gid, ...]:
    found = []
    for entry in sorted((port / "gids").glob("*"), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        gid = _text(entry)
        if not entry.name.isdigit() or not gid or gid == _EMPTY_GID:
            continue
        found.append(Gid(int(entry.name), gid, _text(port / "gid_attrs" / "types" / entry.name),
                         _text(port / "gid_attrs" / "ndevs" / entry.name)))
    return tuple(found)


def read_rdma_ports(sysfs_root: Path = Path("/sys")) -> list[RdmaPort]:
    """Every port of every device under <sysfs_root>/class/infiniband."""
    ports = []
    for port in sorted((sysfs_root / "class" / "infiniband").glob("*/ports/*")):
        device = port.parent.parent
        ports.append(RdmaPort(device.name, int(port.name) if port.name.isdigit() else 0, _text(port / "state"),
                              _text(port / "phys_state"), _text(port / "link_layer"), _text(port / "rate"),
                              _text(device / "fw_ver"), _gids(port)))
    return ports
