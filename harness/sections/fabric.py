"""Fabric variables of slurm.env checked by value at render time: UCX_NET_DEVICES, UCX_IB_GID_INDEX, UCX_TLS, NCCL_*.

Open MPI's UCX PML carries the MPI traffic between the ranks of a multi-node TensorRT-LLM job (the executor's
control messages, and the PMIx-started world); over RoCE it needs the right port and GID. The syntax checked
here is UCX's (`ucx_info -c`, UCX 1.x docs "UCX environment variables"):

- UCX_NET_DEVICES: ``all`` or a comma list; an RDMA device is ``DEVICE:PORT`` (e.g. ``mlx5_0:1``), a TCP
  device is a network interface name (``eth0``). An RDMA device without ``:PORT`` matches nothing, and UCX
  then silently falls back to another transport (or fails to connect): refused.
- UCX_IB_GID_INDEX: ``auto`` or an integer 0-255 (RoCE v2 is usually 3 on a default mlx5 port; ``show_gids``).
- UCX_TLS: a comma list of transport names, optionally led by ``^`` (exclude); a multi-node job needs one that
  leaves the node (tcp, rc*, ud*, dc*, ib, all, or an exclusion list).
- NCCL_IB_GID_INDEX: an integer (NCCL reads it with atoi: a word becomes 0).
Every message is one line: the variable, the value seen, what is expected, how to fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["UCX_TRANSPORTS", "fabric_problem", "multinode_problem"]

UCX_TRANSPORTS = frozenset({
    "all", "self", "sm", "shm", "mm", "posix", "sysv", "xpmem", "cma", "knem", "tcp", "ib", "rc", "rc_v", "rc_x",
    "rc_verbs", "rc_mlx5", "ud", "ud_v", "ud_x", "ud_verbs", "ud_mlx5", "dc", "dc_x", "dc_mlx5", "cuda",
    "cuda_copy", "cuda_ipc", "gdr_copy", "rocm", "rocm_copy", "rocm_ipc", "ze_copy", "ze_ipc", "srd"})
_LEAVES_NODE = frozenset({"all", "tcp", "ib", "rc", "rc_v", "rc_x", "rc_verbs", "rc_mlx5", "ud", "ud_v", "ud_x",
                          "ud_verbs", "ud_mlx5", "dc", "dc_x", "dc_mlx5", "srd"})
_RDMA_DEVICE = re.compile(r"^(mlx\d+_\d+|mlx\d+_bond_\d+|bnxt_re\d+|irdma\d+|qedr\d+|rocep\w+|hfi\d+_\d+|efa\d+)$")
_DEVICE_PORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*:[1-9]\d*$")
_NETDEV = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,14}$")


def _net_devices(value: str) -> str | None:
    if value == "all":
        return None
    for entry in value.split(","):
        if _DEVICE_PORT.match(entry):
            continue
        if _RDMA_DEVICE.match(entry):
            return (f"UCX_NET_DEVICES {value!r}: {entry!r} is an RDMA device without its port; expected "
                    f"DEVICE:PORT entries (e.g. mlx5_0:1); fix: write {entry}:1 (the port `ibv_devinfo` lists)")
        if not _NETDEV.match(entry):
            return (f"UCX_NET_DEVICES {value!r}: entry {entry!r} is neither DEVICE:PORT (mlx5_0:1) nor a network "
                    "interface name (eth0); fix: a comma list such as mlx5_0:1,mlx5_1:1, or all")
    return None


def _gid_index(name: str, value: str, allow_auto: bool) -> str | None:
    if (allow_auto and value == "auto") or (value.isdigit() and int(value) <= 255):
        return None
    expected = "auto or an integer 0-255" if allow_auto else "an integer 0-255"
    return (f"{name} {value!r} is not {expected}; fix: the RoCE v2 GID index of the port (often 3; "
            "`show_gids` lists them)")


def _tls(value: str) -> str | None:
    names = value.removeprefix("^").split(",")
    unknown = [n for n in names if n.removesuffix("\\") not in UCX_TRANSPORTS]
    if not value or unknown:
        return (f"UCX_TLS {value!r}: unknown transport(s) {', '.join(unknown) or '(empty)'}; expected a comma list "
                "of UCX transports (e.g. rc,sm,self or ^ud), see `ucx_info -d`; fix the spelling or drop UCX_TLS")
    return None


def fabric_problem(name: str, value: str) -> str | None:
    """A one-line problem with one slurm.env variable, or None (variables not listed here are not checked)."""
    if name == "UCX_NET_DEVICES":
        return _net_devices(value)
    if name == "UCX_IB_GID_INDEX":
        return _gid_index(name, value, allow_auto=True)
    if name == "NCCL_IB_GID_INDEX":
        return _gid_index(name, value, allow_auto=False)
    if name == "UCX_TLS":
        return _tls(value)
    return None


def multinode_problem(env: Mapping[str, str], nodes: int) -> str | None:
    """UCX_TLS of a job spanning several nodes must keep a transport that leaves the node."""
    value = env.get("UCX_TLS")
    if nodes <= 1 or value is None or value.startswith("^"):
        return None
    if not set(value.split(",")) & _LEAVES_NODE:
        return (f"UCX_TLS {value!r} has no transport between nodes, but the job spans {nodes} nodes; expected one "
                "of rc, ud, dc, tcp (or all); fix: e.g. UCX_TLS=rc,sm,self")
    return None
