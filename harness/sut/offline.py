"""OfflineSut: takes LoadGen's single big query, sorts it by input length, submits it in backend batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from harness.backends.base import BackendInfo
from harness.sut.base import SutCore


class OfflineSut(SutCore):
    """Offline scenario: no first tokens; longest prompts first so batches hold similar lengths.

    The sorted query goes to the backend in chunks of `submit_chunk` (the backend's batch size), so the
    first batch runs while the rest is still being handed over.
    """

    def __init__(self, *args: Any, submit_chunk: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit_chunk = max(1, submit_chunk) if submit_chunk is not None else None
        self._prompt_lengths = np.array([len(sample.input_ids) for sample in self.samples], dtype=np.int64)

    def start_backend(self) -> BackendInfo:
        """Start the backend; unless set, hand the query over in batches of the backend's batch size."""
        info = super().start_backend()
        if self.submit_chunk is None and info.max_batch_size:
            self.submit_chunk = info.max_batch_size
        return info

    def issue_columns(self, response_ids: list[int], sample_indices: list[int]) -> None:
        """LoadGen issue callback: longest prompts first (ties keep LoadGen's order), in backend batches."""
        indices = np.asarray(sample_indices, dtype=np.int64)
        order = np.argsort(-self._prompt_lengths[indices], kind="stable")
        indices = indices[order]
        tickets = self.register(np.asarray(response_ids, dtype=np.int64)[order], indices)
        chunk = self.submit_chunk or len(tickets)  # unknown batch size: all at once
        for start in range(0, len(tickets), chunk):
            self.submit(self.requests(tickets[start:start + chunk], indices[start:start + chunk].tolist()))
