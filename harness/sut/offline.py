"""OfflineSut: takes LoadGen's single big query, sorts it by input length, submits it in backend batches."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from harness.sut.base import SutCore


class OfflineSut(SutCore):
    """Offline scenario: no first tokens; longest prompts first so batches hold similar lengths.

    The sorted query goes to the backend in chunks of `submit_chunk` (the backend's batch size), so the
    first batch runs while the rest is still being handed over.
    """

    def __init__(self, *args: Any, submit_chunk: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit_chunk = max(1, submit_chunk)
        self._prompt_lengths = np.array([len(sample.input_ids) for sample in self.samples], dtype=np.int64)

    def issue_columns(self, request_ids: list[int], sample_indices: list[int]) -> None:
        """LoadGen issue callback: longest prompts first (ties keep LoadGen's order), in backend batches."""
        now = time.monotonic_ns()
        indices = np.asarray(sample_indices, dtype=np.int64)
        order = np.argsort(-self._prompt_lengths[indices], kind="stable")
        ids = np.asarray(request_ids, dtype=np.int64)[order]
        indices = indices[order]
        chunk = self.submit_chunk
        for start in range(0, len(order), chunk):
            self.submit(self.make_requests(ids[start:start + chunk].tolist(), indices[start:start + chunk].tolist(),
                                           issued_ns=now))
