"""TrtllmOptions: the `backend:` section of the TensorRT-LLM LLM API backend, and NVIDIA's runtime presets.

The runtime settings map onto TensorRT-LLM 1.2.x LLM arguments (tensorrt_llm/llmapi/llm_args.py):
capacity_scheduler_policy -> scheduler_config.capacity_scheduler_policy (SchedulerConfig, CapacitySchedulerPolicy
MAX_UTILIZATION | GUARANTEED_NO_EVICT | STATIC_BATCH, default GUARANTEED_NO_EVICT); cuda_graph_batch_sizes /
cuda_graph_padding -> cuda_graph_config.batch_sizes / enable_padding (CudaGraphConfig, TorchLlmArgs only);
disable_overlap_scheduler (TorchLlmArgs only); max_num_tokens, max_batch_size, enable_chunked_prefill;
kv_cache_free_gpu_memory_fraction -> kv_cache_config.free_gpu_memory_fraction.
`preset: h100 | h200` fills the keys a config leaves out with NVIDIA's Llama 2 70B settings (docs/tensorrt-llm.md
cites the configs): an explicit key always wins.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.backends.options import BackendOptions
from harness.settings import ModelConfig

__all__ = ["RUNTIME_PRESETS", "SCHEDULER_POLICIES", "TrtllmOptions"]

SCHEDULER_POLICIES = {"max_util": "MAX_UTILIZATION", "guaranteed_no_evict": "GUARANTEED_NO_EVICT",
                      "static_batch": "STATIC_BATCH"}  # NVIDIA's harness spelling -> CapacitySchedulerPolicy value
# NVIDIA's MLPerf Llama 2 70B runtime settings (trtllm_runtime_flags / gpu_batch_size of the closed configs; see
# docs/tensorrt-llm.md "Presets"): one model per GPU on H200 (TP1 x 8), one per GPU pair on H100 (TP2 x 4).
RUNTIME_PRESETS: dict[str, dict[str, Any]] = {
    "h200": {"tensor_parallel_size": 1, "max_batch_size": 2048, "max_num_tokens": 1536,
             "capacity_scheduler_policy": "max_util", "enable_chunked_prefill": True,
             "kv_cache_free_gpu_memory_fraction": 0.9},
    "h100": {"tensor_parallel_size": 2, "max_batch_size": 896, "max_num_tokens": 1536,
             "capacity_scheduler_policy": "max_util", "enable_chunked_prefill": True,
             "kv_cache_free_gpu_memory_fraction": 0.9},
}
_PYTORCH_ONLY = ("cuda_graph_batch_sizes", "cuda_graph_padding", "disable_overlap_scheduler")


class TrtllmOptions(BackendOptions):
    """TensorRT-LLM LLM API (1.x): an HF/ModelOpt checkpoint (pytorch) or a trtllm-build engine dir (tensorrt)."""

    kind: Literal["trtllm"] = "trtllm"
    backend: Literal["pytorch", "tensorrt"] = Field(
        "pytorch", description="pytorch: model.path is an HF checkpoint; tensorrt: an engine dir (TRT-LLM <= 1.2)")
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_batch_size: int | None = Field(None, ge=1, description="null = TensorRT-LLM's default")
    max_num_tokens: int | None = Field(None, ge=1, description="null = TensorRT-LLM's default")
    max_seq_len: int | None = Field(None, ge=2)
    kv_cache_free_gpu_memory_fraction: float = Field(0.9, gt=0.0, le=1.0)
    kv_cache_dtype: Literal["auto", "fp8"] = Field("auto", description="pytorch only; engines fix it at quantize time")
    enable_block_reuse: bool = Field(
        False, description="KV-cache block reuse across requests (cross-query prefix caching; TensorRT-LLM's default "
                           "is on): a compliance trap, prohibited in the closed division (mlcommons/inference #2445); "
                           "off: each sample is independent")
    enable_chunked_prefill: bool = Field(False, description="chunked context (NVIDIA: enable_chunked_context)")
    preset: Literal["h100", "h200"] | None = Field(None, description="NVIDIA's Llama 2 70B runtime settings for "
                                                                     "the keys left out (an explicit key wins)")
    capacity_scheduler_policy: Literal["max_util", "guaranteed_no_evict", "static_batch"] | None = Field(
        None, description="scheduler_config.capacity_scheduler_policy; null = TensorRT-LLM's (guaranteed_no_evict)")
    cuda_graph_batch_sizes: tuple[int, ...] | None = Field(
        None, min_length=1, description="pytorch only: cuda_graph_config.batch_sizes (null = TensorRT-LLM's)")
    cuda_graph_padding: bool | None = Field(None, description="pytorch only: cuda_graph_config.enable_padding")
    disable_overlap_scheduler: bool | None = Field(None, description="pytorch only; null = TensorRT-LLM's (False)")
    ready_timeout_s: float | None = Field(
        1800.0, gt=0, description="bounded wait for LLM(...) to load and its executor to be ready (TP x PP "
                                  "over nodes can hang: NVIDIA/TensorRT-LLM#8961); null = unbounded, in the caller's "
                                  "thread")
    stop_timeout_s: float = Field(60.0, gt=0, description="stop waits this long for the engine to shut down; a "
                                                           "hang beyond it is abandoned and fails the run (exit 4)")
    gpu_check: bool = Field(True, description="refuse to start when allocated GPUs != TP x PP x replicas")
    llm_args: dict[str, Any] = Field(default_factory=dict, description="extra LLM(...) keyword arguments, verbatim")
    stages: dict[str, str] = Field(default_factory=dict, description="quantize/convert/build for `harness slurm`: "
                                   "preset, work_dir, hf_model_dir, trtllm_examples, calib_dataset")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in RUNTIME_PRESETS:
            return {**RUNTIME_PRESETS[data["preset"]], **data}
        return data

    @model_validator(mode="after")
    def _runtime_keys_fit_backend(self) -> TrtllmOptions:
        if any(size < 1 for size in self.cuda_graph_batch_sizes or ()):
            raise ValueError(f"cuda_graph_batch_sizes {list(self.cuda_graph_batch_sizes or ())} must be positive")
        given = [name for name in _PYTORCH_ONLY if getattr(self, name) is not None]
        if self.backend == "tensorrt" and given:
            raise ValueError(f"{', '.join(given)} exist only for the PyTorch backend (TorchLlmArgs); an engine "
                             "(backend: tensorrt) has no such LLM argument; drop them or use backend: pytorch")
        return self

    @model_validator(mode="after")
    def _engine_fixes_kv_dtype(self) -> TrtllmOptions:
        if self.backend == "tensorrt" and self.kv_cache_dtype != "auto":
            raise ValueError(
                f"kv_cache_dtype {self.kv_cache_dtype!r} has no effect on a tensorrt engine (it is fixed when the "
                "checkpoint is quantized); use kv_cache_dtype: auto and quantize with --kv_cache_dtype fp8")
        return self

    @property
    def gpus_per_replica(self) -> int:
        """GPUs one model instance spans: tensor x pipeline parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def model_problem(self, model: ModelConfig) -> str | None:
        """TensorRT-LLM needs a checkpoint or engine directory; the embedded GGUF runs only on hf."""
        if model.path is None:
            return ("backend.kind trtllm needs model.path (an HF checkpoint or a trtllm-build engine dir); "
                    "the embedded SmolLM2 GGUF runs only on the hf backend")
        return None
