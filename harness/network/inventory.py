"""What one host brings to a run: CPUs, memory, GPUs (nvidia-smi), RDMA ports and network interfaces."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.network.rdma import read_rdma_ports

_GPU_QUERY = "--query-gpu=index,name,memory.total,driver_version,pci.bus_id"


@dataclass(frozen=True)
class HostInventory:
    """One rank's view of its host; JSON-ready through asdict."""

    host: str
    rank: int
    cpus: int
    memory_gib: float
    gpus: list[dict[str, str]] = field(default_factory=list)
    rdma_ports: list[dict[str, Any]] = field(default_factory=list)
    interfaces: dict[str, str] = field(default_factory=dict)
    visible_devices: str = ""


def _memory_gib(proc: Path) -> float:
    try:
        for line in (proc / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / (1 << 20), 1)
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def list_gpus() -> list[dict[str, str]]:
    """GPUs from nvidia-smi (no CUDA import); empty when nvidia-smi is absent or fails."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        done = subprocess.run(["nvidia-smi", _GPU_QUERY, "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    keys = ("index", "name", "memory", "driver", "pci_bus_id")
    return [dict(zip(keys, (p.strip() for p in line.split(",")), strict=False))
            for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def _interfaces(sysfs_root: Path) -> dict[str, str]:
    found = {}
    for iface in sorted((sysfs_root / "class" / "net").glob("*")):
        if iface.name == "lo":
            continue
        try:
            state = (iface / "operstate").read_text().strip()
            speed = (iface / "speed").read_text().strip() if (iface / "speed").exists() else ""
        except OSError:
            state, speed = "unknown", ""
        found[iface.name] = state + (f", {speed} Mb/s" if speed and not speed.startswith("-") else "")
    return found


def host_inventory(rank: int = 0, sysfs_root: Path = Path("/sys"), proc: Path = Path("/proc")) -> HostInventory:
    """Inventory of the host this process runs on."""
    return HostInventory(socket.gethostname(), rank, os.cpu_count() or 0, _memory_gib(proc), list_gpus(),
                         [asdict(p) for p in read_rdma_ports(sysfs_root)], _interfaces(sysfs_root),
                         os.environ.get("CUDA_VISIBLE_DEVICES", ""))
