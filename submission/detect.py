"""`submission system detect`: fill what the machine can tell about itself into a system description.

Reads /proc/cpuinfo and /proc/meminfo, os-release, nvidia-smi (when present), the NICs and RDMA devices
under /sys/class/net and /sys/class/infiniband, block devices under /sys/block, Slurm/Open MPI
variables for node counts, and a run manifest for framework versions. The roots are parameters so
tests use recorded trees. Everything it cannot know is listed for the user to fill.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.artifacts import Manifest
from submission.system import MEANINGFUL_KEYS, REQUIRED_KEYS

Runner = Callable[[list[str]], str | None]


@dataclass(frozen=True)
class Sources:
    """Where detection reads from (all overridable for tests)."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    os_release: Path = Path("/etc/os-release")
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    manifest: Manifest | None = None
    run: Runner | None = None


@dataclass
class Detected:
    """Detected values and the keys the user must still fill."""

    values: dict[str, Any]
    missing: list[str]

    def as_json(self) -> dict[str, Any]:
        """All 35 keys in the checker's order; undetected ones empty for the user to fill."""
        return {key: self.values.get(key, "") for key in REQUIRED_KEYS}


def _run_command(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _size(n_bytes: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.0f} {unit}" if n_bytes / scale >= 10 else f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1e6:.0f} MB"


def detect_cpu(proc: Path) -> dict[str, Any]:
    """CPU model, sockets and cores per socket from cpuinfo."""
    blocks = [b for b in _read(proc / "cpuinfo").split("\n\n") if b.strip()]
    fields = [dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in b.splitlines()))
              for b in blocks]
    if not fields:
        return {}
    found: dict[str, Any] = {}
    if fields[0].get("model name"):
        found["host_processor_model_name"] = fields[0]["model name"]
    sockets = {f.get("physical id") for f in fields if f.get("physical id") is not None}
    found["host_processors_per_node"] = max(len(sockets), 1)
    cores = fields[0].get("cpu cores")
    found["host_processor_core_count"] = int(cores) if cores and cores.isdigit() else len(fields)
    return found


def detect_memory(proc: Path) -> dict[str, Any]:
    """host_memory_capacity from MemTotal."""
    for line in _read(proc / "meminfo").splitlines():
        if line.startswith("MemTotal:"):
            gib = int(line.split()[1]) / 1024 / 1024
            text = f"{gib / 1024:.1f} TB" if gib >= 1000 else f"{round(gib)} GB"
            return {"host_memory_capacity": text}
    return {}


def detect_os(os_release: Path) -> dict[str, Any]:
    """operating_system from PRETTY_NAME."""
    for line in _read(os_release).splitlines():
        if line.startswith("PRETTY_NAME="):
            return {"operating_system": line.partition("=")[2].strip().strip('"')}
    return {}


def detect_storage(sys_root: Path) -> dict[str, Any]:
    """Total capacity and type of the physical block devices."""
    total, kinds = 0, set()
    for dev in sorted((sys_root / "block").glob("*")):
        if dev.name.startswith(("loop", "ram", "zram", "dm-", "md", "sr")) or _read(dev / "removable") == "1":
            continue
        sectors = _read(dev / "size")
        total += int(sectors) * 512 if sectors.isdigit() else 0
        kinds.add("NVMe SSD" if dev.name.startswith("nvme") else
                  "SSD" if _read(dev / "queue" / "rotational") == "0" else "HDD")
    return {"host_storage_capacity": _size(total), "host_storage_type": ", ".join(sorted(kinds))} if total else {}


def detect_gpus(run: Runner) -> dict[str, Any]:
    """Accelerator count, model, memory and driver from nvidia-smi."""
    out = run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader,nounits"])
    rows = [[c.strip() for c in line.split(",")] for line in (out or "").splitlines() if line.strip()]
    if not rows or len(rows[0]) < 3:
        return {}
    name, memory_mib, driver = rows[0][:3]
    found: dict[str, Any] = {"accelerators_per_node": len(rows), "accelerator_model_name": name,
                             "_driver": driver}
    if memory_mib.isdigit():
        found["accelerator_memory_capacity"] = f"{round(int(memory_mib) / 1024)} GB"
    return found


def detect_nodes(environ: Mapping[str, str]) -> dict[str, Any]:
    """number_of_nodes (and GPUs per node) from Slurm or Open MPI variables."""
    found: dict[str, Any] = {}
    nodes = environ.get("SLURM_JOB_NUM_NODES") or environ.get("SLURM_NNODES")
    if nodes and nodes.isdigit():
        found["number_of_nodes"] = int(nodes)
    else:
        size, local = environ.get("OMPI_COMM_WORLD_SIZE"), environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
        if size and local and size.isdigit() and local.isdigit() and int(local):
            found["number_of_nodes"] = max(int(size) // int(local), 1)
    gpus = environ.get("SLURM_GPUS_ON_NODE") or environ.get("SLURM_GPUS_PER_NODE", "").rpartition(":")[2]
    if gpus and gpus.isdigit():
        found["accelerators_per_node"] = int(gpus)
    return found


def detect_software(manifest: Manifest | None, driver: str | None) -> dict[str, Any]:
    """framework and other_software_stack from a run manifest's versions (and the GPU driver)."""
    versions = dict(manifest.versions) if manifest else {}
    found: dict[str, Any] = {}
    if "tensorrt_llm" in versions:
        found["framework"] = f"TensorRT-LLM {versions['tensorrt_llm']}"
    elif "torch" in versions:
        found["framework"] = f"PyTorch {versions['torch']}" + (
            f", transformers {versions['transformers']}" if "transformers" in versions else "")
    others = [f"{name} {versions[name]}" for name in ("mlcommons-loadgen", "mlperf-llm-harness", "python", "mpi4py")
              if name in versions]
    if driver:
        others.insert(0, f"NVIDIA driver {driver}")
    if others:
        found["other_software_stack"] = ", ".join(others)
    return found


def detect_system(sources: Sources | None = None) -> Detected:
    """Everything detectable; the rest listed as missing."""
    src = sources or Sources()
    from submission.network import detect_network

    values: dict[str, Any] = {"division": "open", "system_type": "datacenter", "number_of_nodes": 1}
    values |= detect_cpu(src.proc) | detect_memory(src.proc) | detect_os(src.os_release)
    values |= detect_storage(src.sys) | detect_network(src.sys)
    values |= detect_gpus(src.run or _run_command)
    values |= detect_nodes(src.environ)
    values |= detect_software(src.manifest, values.pop("_driver", None))
    missing = [key for key in MEANINGFUL_KEYS if not values.get(key)]
    return Detected(values, missing)
