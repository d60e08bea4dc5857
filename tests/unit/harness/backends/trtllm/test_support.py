"""Pure rules of the TensorRT-LLM backend (no tensorrt_llm needed): versions, GPU layout, argument mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.backends.sampling import sampling_spec
from harness.backends.trtllm.options import TrtllmOptions
from harness.backends.trtllm.support import (
    allocated_gpus,
    check_engine_dir,
    check_gpu_layout,
    check_version,
    final_tokens,
    kv_cache_kwargs,
    llm_kwargs,
    parse_version,
    sampling_kwargs,
)
from harness.errors import ConfigError, EnvironmentProblem, PreflightError
from harness.settings import GenerationConfig

TP8_PP2 = TrtllmOptions(tensor_parallel_size=8, pipeline_parallel_size=2)
TP8 = TrtllmOptions(tensor_parallel_size=8)


@pytest.mark.parametrize(("text", "expected"), [("1.2.1", (1, 2)), ("1.3.0rc4", (1, 3)), ("0.21.0", (0, 21))])
def test_parse_version(text: str, expected: tuple[int, int]) -> None:
    assert parse_version(text) == expected


def test_version_rules() -> None:
    assert check_version("1.0.0", "pytorch") == [] and check_version("1.2.1", "tensorrt") == []
    with pytest.raises(EnvironmentProblem, match="too old"):
        check_version("0.21.0", "pytorch")
    with pytest.raises(EnvironmentProblem, match=r"removed after 1\.2"):
        check_version("1.3.0", "tensorrt")
    with pytest.raises(EnvironmentProblem, match="expected a version"):
        check_version("unknown", "pytorch")
    assert "newer than" in check_version("1.3.0", "pytorch")[0]


def test_launcher_world_wins_over_stripped_slurm_variables() -> None:
    env = {"TLLM_SPAWN_PROXY_PROCESS": "1", "tllm_mpi_size": "16", "CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"}
    found = allocated_gpus(env)
    assert found is not None and (found.count, found.source.split()[0]) == (16, "trtllm-llmapi-launch")


def test_allocation_sources_in_order() -> None:
    whole_node = allocated_gpus({"SLURM_NTASKS": "2", "SLURM_GPUS_ON_NODE": "8", "SLURM_NTASKS_PER_NODE": "1"})
    assert whole_node is not None and (whole_node.count, whole_node.source) == (8, "SLURM_GPUS_ON_NODE")
    shared = allocated_gpus({"SLURM_GPUS_ON_NODE": "8", "SLURM_NTASKS_PER_NODE": "4"})
    assert shared is not None and shared.count == 2 and "4 ranks per node" in shared.source
    assert allocated_gpus({"CUDA_VISIBLE_DEVICES": "0,1"}).count == 2  # type: ignore[union-attr]
    assert allocated_gpus({"CUDA_VISIBLE_DEVICES": ""}).count == 0  # type: ignore[union-attr]
    assert allocated_gpus({"SLURM_NTASKS": "16"}) is None


def test_seed_layout_under_launcher_passes_and_wrong_world_fails() -> None:
    ok = {"TLLM_SPAWN_PROXY_PROCESS": "1", "tllm_mpi_size": "16"}
    assert "16 GPUs" in check_gpu_layout(TP8_PP2, 1, ok)
    with pytest.raises(PreflightError) as caught:
        check_gpu_layout(TP8_PP2, 1, {"TLLM_SPAWN_PROXY_PROCESS": "1", "tllm_mpi_size": "8"})
    assert "= 16 GPUs per model, but this process has 8" in caught.value.message
    assert "--ntasks=16" in (caught.value.hint or "")


def test_replicas_in_one_mpi_world_are_refused_with_the_serve_stage_as_the_way() -> None:
    """Risk 7 of issue 16: LLM(tensor_parallel_size=8) per harness rank spawns MPI workers inside the srun step."""
    two_nodes = {"SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_GPUS_ON_NODE": "8"}
    with pytest.raises(PreflightError, match=r"over 2 harness ranks.*MPI_Comm_spawn.*TensorRT-LLM#5495") as caught:
        check_gpu_layout(TP8, 2, two_nodes)
    assert "harness slurm render serve" in (caught.value.hint or "")
    with pytest.raises(PreflightError, match="exactly one TP x PP model"):
        check_gpu_layout(TP8, 2, {"TLLM_SPAWN_PROXY_PROCESS": "1", "tllm_mpi_size": "16"})
    with pytest.raises(PreflightError, match="would share the same 8 GPUs"):
        check_gpu_layout(TP8, 2, {"CUDA_VISIBLE_DEVICES": "0,1,2,3,4,5,6,7"})


def test_unknown_allocation_is_reported_not_refused() -> None:
    assert "unknown" in check_gpu_layout(TP8, 1, {})


def test_greedy_reference_sampling() -> None:
    spec = sampling_spec(GenerationConfig(max_new_tokens=1024, min_new_tokens=1), eos_token_id=2)
    assert sampling_kwargs(spec) == {"end_id": 2, "pad_id": 2, "max_tokens": 1024, "min_tokens": 1,
                                     "detokenize": False, "top_k": 1}


def test_sampled_and_penalised_generation() -> None:
    generation = GenerationConfig(temperature=0.6, top_k=0, top_p=0.9, repetition_penalty=1.2, presence_penalty=0.3)
    kwargs = sampling_kwargs(sampling_spec(generation, eos_token_id=2, pad_token_id=0))
    assert kwargs["pad_id"] == 0 and kwargs["temperature"] == 0.6 and kwargs["top_k"] is None
    assert (kwargs["top_p"], kwargs["repetition_penalty"], kwargs["presence_penalty"]) == (0.9, 1.2, 0.3)


def test_beam_search_mapping() -> None:
    kwargs = sampling_kwargs(sampling_spec(GenerationConfig(num_beams=3, early_stopping=False), eos_token_id=2))
    assert (kwargs["use_beam_search"], kwargs["best_of"], kwargs["n"], kwargs["early_stopping"]) == (True, 3, 1, 0)
    assert "top_k" not in kwargs


def test_llm_kwargs_and_kv_cache() -> None:
    options = TrtllmOptions(tensor_parallel_size=8, pipeline_parallel_size=2, max_batch_size=512,
                           kv_cache_dtype="fp8", llm_args={"enable_attention_dp": False})
    kwargs = llm_kwargs(options, "/m", None)
    assert kwargs == {"model": "/m", "tensor_parallel_size": 8, "pipeline_parallel_size": 2,
                      "skip_tokenizer_init": True, "max_batch_size": 512, "enable_attention_dp": False}
    assert kv_cache_kwargs(options)["dtype"] == "fp8"
    assert "dtype" not in kv_cache_kwargs(TrtllmOptions(backend="tensorrt"))
    with pytest.raises(ConfigError, match="repeats max_batch_size"):
        llm_kwargs(TrtllmOptions(max_batch_size=8, llm_args={"max_batch_size": 16}), "/m", None)


def test_engine_dir_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no config\.json"):
        check_engine_dir(str(tmp_path), 1, 1)
    (tmp_path / "config.json").write_text(json.dumps({"pretrained_config": {"mapping": {"tp_size": 2, "pp_size": 1}}}))
    with pytest.raises(ConfigError, match=r"lacks rank0\.engine, rank1\.engine"):
        check_engine_dir(str(tmp_path), 2, 1)
    for rank in range(2):
        (tmp_path / f"rank{rank}.engine").write_bytes(b"x")
    check_engine_dir(str(tmp_path), 2, 1)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a trtllm-build engine config"):
        check_engine_dir(str(tmp_path), 2, 1)


@pytest.mark.parametrize(("tokens", "reason", "expected"), [
    ([5, 6], "stop", [5, 6, 2]),
    ([5, 6, 2], "stop", [5, 6, 2]),
    ([5, 6], "length", [5, 6]),
    ([], "stop", [2]),
])
def test_final_tokens(tokens: list[int], reason: str, expected: list[int]) -> None:
    assert final_tokens(tokens, reason, 2) == expected


def test_tensorrt_engine_refuses_runtime_kv_dtype() -> None:
    with pytest.raises(ValueError, match="fixed when the checkpoint is quantized"):
        TrtllmOptions(backend="tensorrt", kv_cache_dtype="fp8")


def test_the_engine_record_follows_the_kv_cache_config_the_llm_gets() -> None:
    from harness.backends.trtllm.options import TrtllmOptions
    from harness.backends.trtllm.support import engine_record

    assert engine_record(TrtllmOptions(), "1.2.1", "/m")["prefix_caching"] == "off"
    on = engine_record(TrtllmOptions(enable_block_reuse=True), "1.2.1", "/m")
    assert (on["engine"], on["prefix_caching"], on["settings"]["enable_block_reuse"]) == ("trtllm", "on", "True")
