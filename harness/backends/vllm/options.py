"""VllmOptions: the `backend:` section of the in-process vLLM backend (engine arguments, validated here)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.backends.options import BackendOptions

__all__ = ["NAMED_ENGINE_ARGS", "VllmOptions"]

# The options below that are vLLM engine arguments under the same name (AsyncEngineArgs fields).
NAMED_ENGINE_ARGS: tuple[str, ...] = (
    "dtype", "tensor_parallel_size", "pipeline_parallel_size", "max_num_seqs", "max_num_batched_tokens",
    "max_model_len", "gpu_memory_utilization", "enforce_eager", "seed", "enable_prefix_caching",
    "enable_chunked_prefill")
# Engine arguments the harness sets itself: passing them in engine_args would contradict the run.
_OWNED = ("model", "tokenizer", "skip_tokenizer_init", "kv_cache_memory_bytes", "data_parallel_size",
          "disable_log_stats", "enable_log_requests")


class VllmOptions(BackendOptions):
    """vLLM's async engine in process: an HF checkpoint directory (the embedded GGUF is converted once)."""

    kind: Literal["vllm"] = "vllm"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto = vLLM's choice (bfloat16 on CPU; float32 matches the hf backend's ids)")
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_num_seqs: int | None = Field(None, ge=1, description="sequences per engine step; null = vLLM's default")
    max_num_batched_tokens: int | None = Field(None, ge=1, description="tokens per engine step; null = vLLM's")
    max_model_len: int | None = Field(None, ge=2, description="prompt + output limit; null = the model's")
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0, description="GPU only: share of memory vLLM takes")
    kv_cache_gib: float | None = Field(
        None, gt=0, description="KV cache size in GiB (kv_cache_memory_bytes; on CPU the VLLM_CPU_KVCACHE_SPACE "
                                "setting); null = vLLM's default")
    enforce_eager: bool = Field(False, description="no compiled graphs: starts much faster, decodes slower")
    seed: int = Field(0, ge=0)
    stop_timeout_s: float = Field(60.0, gt=0, description="stop waits this long for the engine to shut down; a "
                                                           "hang beyond it is abandoned and fails the run (exit 4)")
    enable_prefix_caching: bool = Field(
        False, description="KV reuse across prompts (cross-query prefix caching; vLLM's default is on): a compliance "
                           "trap, prohibited in the closed division (mlcommons/inference #2445); off: each sample "
                           "is independent")
    enable_chunked_prefill: bool | None = Field(None, description="null = vLLM's default")
    cpu_bind_replicas: bool = Field(
        True, description="CPU data parallel: give each in-process replica its own share of the cores "
                          "(VLLM_CPU_OMP_THREADS_BIND); false: every replica binds as vLLM decides")
    engine_args: dict[str, Any] = Field(default_factory=dict,
                                        description="other AsyncEngineArgs keyword arguments, verbatim")

    @model_validator(mode="after")
    def _consistent(self) -> VllmOptions:
        clashes = sorted(set(self.engine_args) & set(NAMED_ENGINE_ARGS))
        if clashes:
            raise ValueError(f"engine_args repeats {', '.join(clashes)}: set backend.{clashes[0]} instead")
        owned = sorted(set(self.engine_args) & set(_OWNED))
        if owned:
            raise ValueError(f"engine_args sets {', '.join(owned)}, which the harness decides (model and tokenizer "
                             "from model.*, KV cache from backend.kv_cache_gib, replicas from distributed.replicas)")
        if self.max_num_seqs and self.max_num_batched_tokens and self.max_num_batched_tokens < self.max_num_seqs:
            raise ValueError(f"max_num_batched_tokens ({self.max_num_batched_tokens}) is below max_num_seqs "
                             f"({self.max_num_seqs}); vLLM needs at least one token per scheduled sequence")
        if (self.enable_chunked_prefill is False and self.max_model_len and self.max_num_batched_tokens
                and self.max_num_batched_tokens < self.max_model_len):
            raise ValueError(f"max_num_batched_tokens ({self.max_num_batched_tokens}) is below max_model_len "
                             f"({self.max_model_len}) without chunked prefill: a long prompt could never run")
        return self

    @property
    def gpus_per_replica(self) -> int:
        """Devices one engine spans: tensor x pipeline parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def reads_checkpoint_directory(self) -> bool:
        """vLLM loads an HF checkpoint directory; a GGUF model is converted at the composition point."""
        return True
