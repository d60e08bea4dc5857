"""VllmOptions: validation of the engine options, and its place in the run config (no vllm needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from harness.backends.vllm.options import VllmOptions
from harness.config import RunConfig, load_config


def test_defaults_leave_vllm_its_own_choices() -> None:
    options = VllmOptions()
    assert options.dtype == "auto" and options.max_num_seqs is None and options.kv_cache_gib is None
    assert options.enable_prefix_caching is False and options.gpus_per_replica == 1
    assert options.reads_checkpoint_directory() is True


@pytest.mark.parametrize(("fields", "message"), [
    ({"engine_args": {"seed": 1}}, "engine_args repeats seed: set backend.seed instead"),
    ({"engine_args": {"model": "x"}}, "engine_args sets model, which the harness decides"),
    ({"engine_args": {"data_parallel_size": 2}}, "replicas from distributed.replicas"),
    ({"max_num_seqs": 64, "max_num_batched_tokens": 32}, "max_num_batched_tokens (32) is below max_num_seqs (64)"),
    ({"enable_chunked_prefill": False, "max_model_len": 4096, "max_num_batched_tokens": 2048},
     "below max_model_len (4096) without chunked prefill"),
    ({"dtype": "fp8"}, "Input should be"),
    ({"gpu_memory_utilization": 1.5}, "less than or equal to 1"),
    ({"kv_cache_gib": 0}, "greater than 0"),
    ({"tensor_parallel_size": 0}, "greater than or equal to 1"),
])
def test_inconsistent_options_are_refused(fields: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VllmOptions(**fields)


def test_chunked_prefill_allows_steps_below_the_model_length() -> None:
    options = VllmOptions(max_model_len=4096, max_num_batched_tokens=2048)
    assert options.max_num_batched_tokens == 2048


def test_the_run_config_knows_the_vllm_section() -> None:
    config = load_config(None, ["backend.kind=vllm", "backend.max_num_seqs=16", "backend.dtype=float32",
                                "backend.engine_args={\"block_size\": 64}"])
    assert isinstance(config, RunConfig) and isinstance(config.backend, VllmOptions)
    assert config.backend.max_num_seqs == 16 and config.backend.engine_args == {"block_size": 64}
