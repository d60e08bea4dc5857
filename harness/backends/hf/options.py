"""HfOptions: the `backend:` section of the PyTorch/transformers backend."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.backends.options import BackendOptions

__all__ = ["HfOptions"]


class HfOptions(BackendOptions):
    """PyTorch/transformers backend: CPU or CUDA, HF checkpoint directory or GGUF file."""

    kind: Literal["hf"] = "hf"
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda)(:\d+)?$",
                        description="auto, cpu, cuda or cuda:N (auto:N = GPU N if CUDA is available)")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_batch_size: int = Field(8, ge=1)
    batch_wait_ms: float = Field(20.0, ge=0, description="Server: wait this long to fill a batch")
    threads: int | None = Field(None, ge=1, description="torch CPU threads; default: all cores")
    decode: Literal["auto", "static", "generate"] = Field(
        "auto", description="static: static KV cache + CUDA graphs (greedy Llama); generate: transformers "
                            "generate(); auto: static on CUDA when the model and sampling allow it")

    def for_replica(self, index: int) -> HfOptions:
        """Replica `index` on CUDA gets its own GPU ("auto:N": GPU N modulo the GPUs visible, else the CPU)."""
        if self.device not in ("auto", "cuda"):
            return self
        return self.model_copy(update={"device": f"auto:{index}"})

    def dispatch_chunk(self, offline: bool) -> int:
        """Offline: whole batches per replica, so batches are composed exactly as in one process."""
        return self.max_batch_size if offline else 1
