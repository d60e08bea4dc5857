"""Fabric variables in slurm.env are checked by value when the config loads: one line, the value, the fix."""

from __future__ import annotations

import pytest

from harness.config import build_config
from harness.errors import ConfigError


def _env(nodes: int = 1, **env: str) -> None:
    build_config({"slurm": {"nodes": nodes, "env": env}})


@pytest.mark.parametrize("env", [
    {"UCX_NET_DEVICES": "mlx5_0:1,mlx5_1:1"}, {"UCX_NET_DEVICES": "all"}, {"UCX_NET_DEVICES": "eth0"},
    {"UCX_NET_DEVICES": "mlx5_bond_0:1"}, {"UCX_IB_GID_INDEX": "3"}, {"UCX_IB_GID_INDEX": "auto"},
    {"UCX_TLS": "rc,sm,self"}, {"UCX_TLS": "^ud"}, {"NCCL_IB_GID_INDEX": "3"}, {"NCCL_DEBUG": "anything goes"},
])
def test_good_values_load(env: dict[str, str]) -> None:
    _env(2, **env)


@pytest.mark.parametrize(("env", "message"), [
    ({"UCX_NET_DEVICES": "mlx5_0"}, "UCX_NET_DEVICES 'mlx5_0': 'mlx5_0' is an RDMA device without its port; "
                                    "expected DEVICE:PORT entries (e.g. mlx5_0:1); fix: write mlx5_0:1"),
    ({"UCX_NET_DEVICES": "mlx5_0:1;mlx5_1:1"}, "is neither DEVICE:PORT (mlx5_0:1) nor a network interface name"),
    ({"UCX_NET_DEVICES": "mlx5_0:0"}, "is neither DEVICE:PORT"),
    ({"UCX_IB_GID_INDEX": "roce"}, "UCX_IB_GID_INDEX 'roce' is not auto or an integer 0-255"),
    ({"UCX_IB_GID_INDEX": "300"}, "is not auto or an integer 0-255"),
    ({"NCCL_IB_GID_INDEX": "auto"}, "NCCL_IB_GID_INDEX 'auto' is not an integer 0-255"),
    ({"UCX_TLS": "rc,shmem"}, "UCX_TLS 'rc,shmem': unknown transport(s) shmem"),
])
def test_bad_values_are_refused_with_one_line(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _env(**env)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_multi_node_job_needs_a_transport_between_nodes() -> None:
    _env(1, UCX_TLS="sm,self")
    with pytest.raises(ConfigError, match="UCX_TLS 'sm,self' has no transport between nodes, but the job spans 2"):
        _env(2, UCX_TLS="sm,self")


def test_an_integer_gid_index_in_yaml_is_its_text() -> None:
    config = build_config({"slurm": {"env": {"UCX_IB_GID_INDEX": 3, "NCCL_IB_GID_INDEX": 3}}})
    assert config.slurm.env == {"UCX_IB_GID_INDEX": "3", "NCCL_IB_GID_INDEX": "3"}
