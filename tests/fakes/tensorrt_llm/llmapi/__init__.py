"""Fake `tensorrt_llm.llmapi` (TensorRT-LLM 1.2.1): LLM, SamplingParams, KvCacheConfig, RequestOutput."""

from __future__ import annotations

from typing import Any

from tensorrt_llm import _fake

_PUBLIC = {"LLM": _fake.LLM, "SamplingParams": _fake.SamplingParams, "KvCacheConfig": _fake.KvCacheConfig,
           "RequestOutput": _fake.RequestOutput, "CompletionOutput": _fake.CompletionOutput}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        _fake.record(f"tensorrt_llm.llmapi.{name}")
        return _PUBLIC[name]
    raise AttributeError(f"module 'tensorrt_llm.llmapi' (fake) has no attribute {name!r}")
