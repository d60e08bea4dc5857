"""OfflineSut: takes LoadGen's single big query, sorts it by input length, submits it all at once."""

from __future__ import annotations

from collections.abc import Sequence

from harness.sut.base import SutCore


class OfflineSut(SutCore):
    """Offline scenario: no first tokens; longest prompts first so batches hold similar lengths."""

    def issue(self, queries: Sequence[tuple[int, int]]) -> None:
        """LoadGen issue callback with (response_id, qsl_idx) pairs."""
        requests = self.make_requests(queries)
        requests.sort(key=lambda r: len(r.input_ids), reverse=True)
        self.submit(requests)
