"""SlurmConfig and PreflightConfig validation: the slurm: and preflight: sections of RunConfig."""

from __future__ import annotations

import pytest

from harness.config import build_config
from harness.errors import ConfigError
from harness.sections.slurm import SlurmConfig

VALID = {
    "partition": "batch", "account": "mlperf", "nodes": 2, "ntasks_per_node": 4, "gpus_per_node": 8,
    "cpus_per_task": 16, "time_limit": "1-02:00:00", "container_image": "nvcr.io#nvidia/pytorch:24.01-py3",
    "container_mounts": ["/lustre/models:/models:ro", "/scratch:/scratch"], "container_workdir": "/workspace",
    "env": {"NCCL_IB_GID_INDEX": "3", "NCCL_SOCKET_IFNAME": "eth0", "UCX_NET_DEVICES": "mlx5_0:1"},
    "extra_args": ["--exclusive", "--qos=high", "--reservation=mlperf"],
}


def test_a_full_site_section_validates_and_round_trips_through_run_config() -> None:
    config = build_config({"slurm": VALID})
    assert config.slurm.ntasks == 8
    assert config.slurm.uses_container
    again = build_config(config.model_dump(mode="json"))
    assert again.slurm == config.slurm


@pytest.mark.parametrize(("key", "value", "message"), [
    ("time_limit", "90", 'is not "HH:MM:SS"'),
    ("time_limit", "1:2:3:4", 'is not "HH:MM:SS"'),
    ("time_limit", "1-25:00:00", 'is not "HH:MM:SS"'),
    ("time_limit", "00:00:00", "is zero"),
    ("time_limit", 43200, "must be a quoted string"),
    ("nodes", 0, "greater than or equal to 1"),
    ("partition", "batch queue", "may hold only"),
    ("container_mounts", ["/data"], "is not SRC:DST[:FLAGS]"),
    ("container_mounts", ["/data:relative"], "must be absolute"),
    ("container_mounts", ["/a:/a,/b:/b"], "is not SRC:DST[:FLAGS]"),
    ("container_workdir", "work", "must be an absolute path"),
    ("env", {"nccl_debug": "INFO"}, "is not UPPER_CASE"),
    ("env", {"NCCL_DEBUG": "INFO\nrm -rf /"}, "holds a control character (a newline?)"),
    ("extra_args", ["--nodes=4"], "repeats an option set by a typed field"),
    ("extra_args", ["--comment=a b"], "is not --name or --name=value"),
    ("extra_args", ["-N2"], "is not --name or --name=value"),
    ("mpi", "pmi2", "Input should be"),
])
def test_bad_site_values_are_refused_with_the_key_and_the_reason(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({"slurm": VALID | {key: value}})
    assert f"slurm.{key}" in caught.value.message
    assert message in caught.value.message


def test_an_unquoted_yaml_time_arrives_as_a_number_and_gets_a_fix() -> None:
    """PyYAML reads `time_limit: 12:00:00` as 43200 (sexagesimal); the message says to quote it."""
    with pytest.raises(ConfigError, match="quoted string"):
        build_config({}, ["slurm.time_limit=12:00:00"])


def test_defaults_are_one_task_on_one_node_without_container() -> None:
    slurm = SlurmConfig()
    assert (slurm.nodes, slurm.ntasks, slurm.gpus_per_node, slurm.mpi) == (1, 1, 0, "pmix")
    assert not slurm.uses_container


def test_preflight_thresholds_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"preflight\.min_nccl_busbw_gbyte_s"):
        build_config({"preflight": {"min_nccl_busbw_gbyte_s": 0}})
