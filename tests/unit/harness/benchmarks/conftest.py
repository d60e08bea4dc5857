"""Fixtures for accuracy tests: the embedded SmolLM2 tokenizer and LoadGen-style accuracy logs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.tokenizer import load_tokenizer


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The real embedded SmolLM2 tokenizer (fast; EOS id 2)."""
    return load_tokenizer(None)


def write_log(path: Path, buffers: Sequence[tuple[int, Sequence[int]]], dtype: str = "<i4") -> Path:
    """mlperf_log_accuracy.json with one entry per (qsl_idx, token ids), hex upper case like LoadGen."""
    entries = [{"seq_id": i, "qsl_idx": q, "data": np.asarray(ids, dtype=dtype).tobytes().hex().upper()}
               for i, (q, ids) in enumerate(buffers)]
    path.write_text(json.dumps(entries))
    return path
