"""Small backends for SUT tests: each keeps the sink it is started with and answers as the test needs."""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.base import BackendInfo, BackendReport, TokenSink
from harness.sut.base import SutCore
from harness.types import GenerationRequest

EOS = 2


class StubBackend:
    """Backend protocol with no model: subclasses answer through `self.sink` in `submit`."""

    def __init__(self) -> None:
        self.sink: TokenSink | None = None
        self.cancelled = False

    def start(self, sink: TokenSink) -> BackendInfo:
        self.sink = sink
        return BackendInfo(name="stub", eos_token_id=EOS, max_batch_size=0, streaming=True, submittable=False)

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        raise NotImplementedError

    def cancel_all(self) -> None:
        self.cancelled = True

    def stop(self) -> None:
        return None

    def report(self) -> BackendReport:
        return BackendReport()


def issue(sut: SutCore, queries: Sequence[tuple[int, int]]) -> None:
    """Issue (response_id, qsl_idx) pairs the way LoadGen's glue does (two columns)."""
    sut.issue_columns([q[0] for q in queries], [q[1] for q in queries])
