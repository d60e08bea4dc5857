"""The vLLM backend's pure rules (no vllm needed): engine and sampling arguments, replica placement."""

from __future__ import annotations

import pytest

from harness.backends.sampling import sampling_spec
from harness.backends.vllm.options import VllmOptions
from harness.backends.vllm.support import (
    GIB,
    engine_kwargs,
    first_line,
    replica_environment,
    sampling_kwargs,
    unknown_engine_args,
)
from harness.errors import ConfigError
from harness.settings import GenerationConfig


def test_engine_kwargs_pass_set_options_and_extra_args_through() -> None:
    options = VllmOptions(dtype="float32", max_num_seqs=8, kv_cache_gib=0.5, enforce_eager=True,
                          engine_args={"block_size": 64})
    kwargs = engine_kwargs(options, "/ckpt")
    assert kwargs["model"] == kwargs["tokenizer"] == "/ckpt"
    assert kwargs["dtype"] == "float32" and kwargs["max_num_seqs"] == 8 and kwargs["enforce_eager"] is True
    assert kwargs["kv_cache_memory_bytes"] == GIB // 2 and kwargs["block_size"] == 64
    assert "max_num_batched_tokens" not in kwargs and "enable_chunked_prefill" not in kwargs  # vLLM decides
    assert kwargs["enable_prefix_caching"] is False and kwargs["seed"] == 0 and kwargs["disable_log_stats"] is True


def test_unknown_engine_args_are_named() -> None:
    assert unknown_engine_args({"block_size": 1, "blok_size": 2}, ["block_size", "model"]) == ["blok_size"]


def test_greedy_sampling_stops_exactly_at_the_harness_eos() -> None:
    spec = sampling_spec(GenerationConfig(max_new_tokens=64, min_new_tokens=1), eos_token_id=2)
    kwargs = sampling_kwargs(spec)
    assert kwargs == {"n": 1, "max_tokens": 64, "min_tokens": 1, "ignore_eos": True, "stop_token_ids": [2],
                      "detokenize": False, "skip_special_tokens": False, "temperature": 0.0}


def test_sampled_decoding_maps_every_field() -> None:
    generation = GenerationConfig(temperature=0.7, top_k=40, top_p=0.9, repetition_penalty=1.1, presence_penalty=0.5)
    kwargs = sampling_kwargs(sampling_spec(generation, eos_token_id=7))
    assert (kwargs["temperature"], kwargs["top_k"], kwargs["top_p"]) == (0.7, 40, 0.9)
    assert kwargs["repetition_penalty"] == 1.1 and kwargs["presence_penalty"] == 0.5 and kwargs["stop_token_ids"] == [7]


def test_beam_search_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_beams is 4"):
        sampling_kwargs(sampling_spec(GenerationConfig(num_beams=4), eos_token_id=2))


def test_one_replica_is_placed_as_vllm_decides() -> None:
    assert replica_environment(VllmOptions(), "cpu", 0, 1, [0, 1], {}) == {}


def test_cpu_replicas_get_their_own_cores() -> None:
    options = VllmOptions()
    assert replica_environment(options, "cpu", 0, 2, [0, 1], {}) == {"VLLM_CPU_OMP_THREADS_BIND": "0"}
    assert replica_environment(options, "cpu", 1, 2, [0, 1], {}) == {"VLLM_CPU_OMP_THREADS_BIND": "1"}
    tp2 = VllmOptions(tensor_parallel_size=2)
    assert replica_environment(tp2, "cpu", 1, 2, list(range(8)), {}) == {"VLLM_CPU_OMP_THREADS_BIND": "4,5|6,7"}


def test_cpu_placement_keeps_a_bind_the_user_chose_or_is_switched_off() -> None:
    assert replica_environment(VllmOptions(), "cpu", 1, 2, [0, 1], {"VLLM_CPU_OMP_THREADS_BIND": "0-1"}) == {}
    assert replica_environment(VllmOptions(cpu_bind_replicas=False), "cpu", 1, 2, [0, 1], {}) == {}


def test_too_few_cores_for_the_replicas_is_a_clear_refusal() -> None:
    with pytest.raises(ConfigError, match="3 vLLM replicas x 1 rank"):
        replica_environment(VllmOptions(), "cpu", 0, 3, [0, 1], {})


def test_cuda_replicas_see_their_own_gpus() -> None:
    tp2 = VllmOptions(tensor_parallel_size=2)
    assert replica_environment(tp2, "cuda", 1, 2, [0], {}) == {"CUDA_VISIBLE_DEVICES": "2,3"}
    assert replica_environment(tp2, "cuda", 1, 2, [0], {"CUDA_VISIBLE_DEVICES": "4,5,6,7"}) == {
        "CUDA_VISIBLE_DEVICES": "6,7"}
    with pytest.raises(ConfigError, match="need 4 GPUs; CUDA_VISIBLE_DEVICES lists 2"):
        replica_environment(tp2, "cuda", 0, 2, [0], {"CUDA_VISIBLE_DEVICES": "0,1"})


def test_first_line_of_long_engine_errors() -> None:
    assert first_line(ValueError("\n  bad dtype\nTraceback...")) == "bad dtype"
    assert first_line(RuntimeError()) == "RuntimeError"


def test_the_engine_record_says_whether_prefix_caching_ran() -> None:
    from harness.backends.vllm.support import engine_record

    row = engine_record("0.32.0", "/m", False, "the engine's cache_config.enable_prefix_caching")
    assert (row["url"], row["engine"], row["version"], row["model_root"], row["prefix_caching"]) == (
        "in-process", "vllm", "0.32.0", "/m", "off")
    assert engine_record("0.32.0", "/m", True, "x")["prefix_caching"] == "on"
