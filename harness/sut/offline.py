"""OfflineSut: takes LoadGen's single big query, sorts it by input length, submits it in backend batches."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from harness.sut.base import SutCore


class OfflineSut(SutCore):
    """Offline scenario: no first tokens; longest prompts first so batches hold similar lengths.

    The sorted query goes to the backend in chunks of `submit_chunk` (the backend's batch size), so the
    first batch runs while the rest is still being handed over.
    """

    def __init__(self, *args: Any, submit_chunk: int = 1024, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.submit_chunk = max(1, submit_chunk)
        self._prompt_lengths = [len(sample.input_ids) for sample in self.samples]

    def issue(self, queries: Sequence[tuple[int, int]]) -> None:
        """LoadGen issue callback with (response_id, qsl_idx) pairs."""
        now = time.monotonic_ns()
        lengths = self._prompt_lengths
        ordered = sorted(queries, key=lambda q: lengths[q[1]], reverse=True)
        chunk = self.submit_chunk
        for start in range(0, len(ordered), chunk):
            self.submit(self.make_requests(ordered[start:start + chunk], issued_ns=now))
