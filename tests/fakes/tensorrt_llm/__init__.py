"""Fake `tensorrt_llm` package (stands in for TensorRT-LLM 1.2.1, which cannot be installed in CI).

Only the names harness.backends.trtllm uses exist; every module attribute read goes through __getattr__
and is logged in tensorrt_llm._fake.ACCESSED, so a test can list the adapter's whole API surface.
Put tests/fakes on sys.path to import it (see the `fake_trtllm` fixture).
"""

from __future__ import annotations

from typing import Any

from tensorrt_llm import _fake

_PUBLIC = {"LLM": _fake.LLM, "SamplingParams": _fake.SamplingParams}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        _fake.record("tensorrt_llm.__version__")
        return _fake.STATE.version
    if name in _PUBLIC:
        _fake.record(f"tensorrt_llm.{name}")
        return _PUBLIC[name]
    raise AttributeError(f"module 'tensorrt_llm' (fake) has no attribute {name!r}")
