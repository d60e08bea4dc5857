"""Hand-built TEST06 accuracy-log entries in LoadGen's format (upper-case hex of the raw buffers).

A plain module (not conftest) so parametrize tables can import it: ``from compliance_logs import entry``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def hexed(tokens: list[float] | list[int], dtype: str = "int32") -> str:
    """The hex string LoadGen logs for a buffer of tokens."""
    return np.asarray(tokens, dtype=dtype).tobytes().hex().upper()


def entry(index: int, tokens: list[int], count: int | None = None, first: list[int] | None = None,
          dtype: str = "int32") -> dict[str, Any]:
    """One accuracy-log entry; count defaults to len(tokens); first adds token_data (Server)."""
    item: dict[str, Any] = {"seq_id": index, "qsl_idx": index, "data": hexed(tokens, dtype)}
    if first is not None:
        item["token_data"] = hexed(first, dtype)
    item["token_count"] = len(tokens) if count is None else count
    return item
