"""Fake `tensorrt_llm._tensorrt_engine` (TensorRT-LLM 1.x): `LLM` is the engine-dir (_TrtLLM) class."""

from __future__ import annotations

from typing import Any

from tensorrt_llm import _fake


def __getattr__(name: str) -> Any:
    if name == "LLM":
        _fake.record("tensorrt_llm._tensorrt_engine.LLM")
        return _fake.EngineLLM
    raise AttributeError(f"module 'tensorrt_llm._tensorrt_engine' (fake) has no attribute {name!r}")
