"""Builds the TensorRT-LLM backend from its options and the setup (registry entry point; imports no tensorrt_llm)."""

from __future__ import annotations

from harness.backends.base import BackendSetup
from harness.backends.trtllm.adapter import TrtllmBackend
from harness.backends.trtllm.options import TrtllmOptions

__all__ = ["create"]


def create(options: TrtllmOptions, setup: BackendSetup) -> TrtllmBackend:
    """The TensorRT-LLM backend (tensorrt_llm is imported only when it starts)."""
    return TrtllmBackend(options, setup)
