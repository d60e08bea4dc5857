"""Plain value types shared across the harness: scenarios, modes, run status, checks, samples, requests."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, overload

__all__ = ["Check", "CheckStatus", "GenerationRequest", "RequestBatch", "RunStatus", "Sample", "Scenario", "TestMode",
           "request_ids_of", "sample_indices_of"]


class Scenario(enum.StrEnum):
    """LoadGen scenario as named in the submission tree (Interactive is a LoadGen Server run; SingleStream is the
    edge category's one-query-at-a-time scenario)."""

    OFFLINE = "Offline"
    SERVER = "Server"
    INTERACTIVE = "Interactive"
    SINGLE_STREAM = "SingleStream"

    @property
    def streams_first_token(self) -> bool:
        """Whether LoadGen needs FirstTokenComplete for this scenario (token latencies in every LLM scenario but
        Offline)."""
        return self is not Scenario.OFFLINE

    @property
    def loadgen_scenario(self) -> str:
        """The LoadGen TestScenario name that implements this scenario."""
        return {Scenario.OFFLINE: "Offline", Scenario.SINGLE_STREAM: "SingleStream"}.get(self, "Server")


class TestMode(enum.StrEnum):
    """What a run measures."""

    __test__ = False  # not a pytest test class

    PERFORMANCE = "performance"
    ACCURACY = "accuracy"


class RunStatus(enum.StrEnum):
    """Life cycle of a run directory, recorded in its manifest."""

    RUNNING = "running"
    COMPLETED = "completed"
    ABORTED = "aborted"
    FAILED = "failed"


class CheckStatus(enum.StrEnum):
    """Outcome of one check."""

    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    MANUAL = "MANUAL"


@dataclass(frozen=True)
class Check:
    """One finding of a preflight, compliance or submission check, returned as data."""

    name: str
    status: CheckStatus
    detail: str = ""
    fix: str = ""
    path: str = ""

    @property
    def failed(self) -> bool:
        """True when the check failed."""
        return self.status is CheckStatus.FAIL


@dataclass(frozen=True)
class Sample:
    """One QSL entry: the prompt token ids the SUT receives and the reference answer text."""

    index: int
    input_ids: tuple[int, ...]
    reference: str = ""
    reference_token_count: int = 0


class GenerationRequest(NamedTuple):
    """What a backend is asked to generate: one prompt, identified by a request id.

    The request id is opaque to backends: the SUT's ticket for the sample (see harness.sut.records), which
    the backend hands back with the sample's tokens.

    A NamedTuple, not a dataclass: the Offline path builds 24,576 of them inside LoadGen's timed window.
    """

    request_id: int
    sample_index: int
    input_ids: tuple[int, ...]
    want_first_token: bool = False


class RequestBatch(Sequence[GenerationRequest]):
    """Requests held in columns; reads as a sequence of GenerationRequest, each built only when accessed.

    The SUT hands the Offline query to the backend in these, so that a backend which only needs ids (the
    fake one, a remote dispatcher) never pays for 24,576 request objects inside LoadGen's timed window.
    """

    __slots__ = ("request_ids", "sample_indices", "samples", "want_first_token")

    def __init__(self, request_ids: list[int], sample_indices: list[int], samples: Sequence[Sample],
                 want_first_token: bool) -> None:
        self.request_ids = request_ids
        self.sample_indices = sample_indices
        self.samples = samples
        self.want_first_token = want_first_token

    def __len__(self) -> int:
        return len(self.request_ids)

    @overload
    def __getitem__(self, item: int) -> GenerationRequest: ...

    @overload
    def __getitem__(self, item: slice) -> RequestBatch: ...

    def __getitem__(self, item: int | slice) -> GenerationRequest | RequestBatch:
        if isinstance(item, slice):
            return RequestBatch(self.request_ids[item], self.sample_indices[item], self.samples,
                                self.want_first_token)
        index = self.sample_indices[item]
        return GenerationRequest(self.request_ids[item], index, self.samples[index].input_ids, self.want_first_token)


def request_ids_of(requests: Sequence[GenerationRequest]) -> list[int]:
    """The request ids, straight from the columns when the requests are a RequestBatch."""
    return requests.request_ids if isinstance(requests, RequestBatch) else [r.request_id for r in requests]


def sample_indices_of(requests: Sequence[GenerationRequest]) -> list[int]:
    """The QSL indices, straight from the columns when the requests are a RequestBatch."""
    return requests.sample_indices if isinstance(requests, RequestBatch) else [r.sample_index for r in requests]
