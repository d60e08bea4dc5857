"""TrtllmOptions: the `backend:` section of the TensorRT-LLM LLM API backend."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from harness.backends.options import BackendOptions
from harness.settings import ModelConfig

__all__ = ["TrtllmOptions"]


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
    enable_block_reuse: bool = Field(False, description="KV-cache prefix reuse (off: each sample is independent)")
    enable_chunked_prefill: bool = False
    ready_timeout_s: float | None = Field(
        1800.0, gt=0, description="bounded wait for LLM(...) to load and its executor to be ready (TP x PP "
                                  "over nodes can hang: NVIDIA/TensorRT-LLM#8961); null = unbounded, in the caller's "
                                  "thread")
    gpu_check: bool = Field(True, description="refuse to start when allocated GPUs != TP x PP x replicas")
    llm_args: dict[str, Any] = Field(default_factory=dict, description="extra LLM(...) keyword arguments, verbatim")
    stages: dict[str, str] = Field(default_factory=dict, description="quantize/convert/build for `harness slurm`: "
                                   "preset, work_dir, hf_model_dir, trtllm_examples, calib_dataset")

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
