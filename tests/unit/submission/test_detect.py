"""submission.detect and submission.network against recorded /proc and /sys trees (tests/data/submission)."""

from __future__ import annotations

from pathlib import Path

from harness.artifacts import Manifest
from submission.detect import Sources, detect_nodes, detect_system
from submission.network import detect_network

DATA = Path(__file__).resolve().parents[2] / "data" / "submission"
SMI = "NVIDIA H100 80GB HBM3, 81559, 550.54.15\n" * 8


def _sources(node: str, environ: dict[str, str], smi: str | None = SMI,
             manifest: Manifest | None = None) -> Sources:
    root = DATA / node
    return Sources(proc=root / "proc", sys=root / "sys", os_release=root / "os-release", environ=environ,
                   manifest=manifest, run=lambda command: smi)


def test_detects_a_two_node_roce_h100_cluster_under_slurm() -> None:
    manifest = Manifest(round="v4.0", benchmark="llama2-70b-99", scenario="Offline", mode="performance",
                        backend="trtllm", versions={"tensorrt_llm": "0.9.0", "mlcommons-loadgen": "4.0.1"})
    detected = detect_system(_sources("h100-roce-node", {"SLURM_JOB_NUM_NODES": "2"}, manifest=manifest))
    values = detected.values
    assert values["number_of_nodes"] == 2
    assert values["host_processor_model_name"] == "Intel(R) Xeon(R) Platinum 8480C"
    assert (values["host_processors_per_node"], values["host_processor_core_count"]) == (2, 56)
    assert values["host_memory_capacity"] == "2.0 TB"
    assert values["operating_system"] == "Ubuntu 22.04.4 LTS"
    assert (values["accelerators_per_node"], values["accelerator_model_name"]) == (8, "NVIDIA H100 80GB HBM3")
    assert values["accelerator_memory_capacity"] == "80 GB"
    assert values["host_networking"] == "RoCE v2, 8x 400 Gb/s RDMA"
    assert values["host_network_card_count"].startswith("8x 400 Gb/s RoCE v2 (mlx5_0,")
    assert values["host_network_card_count"].endswith("; 1x 25 Gb/s Ethernet (eno1)")
    assert values["framework"] == "TensorRT-LLM 0.9.0"
    assert values["other_software_stack"] == "NVIDIA driver 550.54.15, mlcommons-loadgen 4.0.1"
    assert values["host_storage_type"] == "NVMe SSD"
    assert "framework" not in detected.missing
    assert {"submitter", "status", "cooling", "host_networking_topology"} <= set(detected.missing)


def test_as_json_has_all_35_keys_in_checker_order() -> None:
    data = detect_system(_sources("h100-roce-node", {})).as_json()
    assert len(data) == 35
    assert list(data)[:3] == ["division", "submitter", "status"]


def test_without_nvidia_smi_the_accelerator_keys_are_missing() -> None:
    detected = detect_system(_sources("h100-roce-node", {}, smi=None))
    assert {"accelerators_per_node", "accelerator_model_name"} <= set(detected.missing)
    assert detected.values["number_of_nodes"] == 1


def test_infiniband_port_is_not_reported_as_roce() -> None:
    found = detect_network(DATA / "ib-node" / "sys")
    assert found["host_networking"] == "InfiniBand, 1x 200 Gb/s RDMA"
    assert found["host_network_card_count"] == "1x 200 Gb/s InfiniBand (mlx5_0); 1x 25 Gb/s Ethernet (eno1)"


def test_node_count_from_open_mpi_world_and_local_sizes() -> None:
    assert detect_nodes({"OMPI_COMM_WORLD_SIZE": "16", "OMPI_COMM_WORLD_LOCAL_SIZE": "8"}) == {"number_of_nodes": 2}


def test_slurm_gpus_per_node_with_type() -> None:
    assert detect_nodes({"SLURM_NNODES": "4", "SLURM_GPUS_PER_NODE": "h100:8"}) == {
        "number_of_nodes": 4, "accelerators_per_node": 8}
