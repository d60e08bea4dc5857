"""ServerSut: submits each query as it arrives; first tokens are streamed back to LoadGen."""

from __future__ import annotations

from harness.sut.base import SutCore


class ServerSut(SutCore):
    """Server and Interactive scenarios: per-query submission, FirstTokenComplete before completion."""

    def issue_columns(self, response_ids: list[int], sample_indices: list[int]) -> None:
        """LoadGen issue callback: submit at once."""
        self.submit(self.make_requests(response_ids, sample_indices))
