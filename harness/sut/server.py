"""ServerSut: submits each query as it arrives; first tokens are streamed back to LoadGen."""

from __future__ import annotations

from collections.abc import Sequence

from harness.sut.base import SutCore


class ServerSut(SutCore):
    """Server and Interactive scenarios: per-query submission, FirstTokenComplete before completion."""

    def issue(self, queries: Sequence[tuple[int, int]]) -> None:
        """LoadGen issue callback with (response_id, qsl_idx) pairs."""
        self.submit(self.make_requests(queries))
