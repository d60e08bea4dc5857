"""Plain value types shared across the harness: scenarios, modes, samples, completions, checks."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Scenario(enum.StrEnum):
    """LoadGen scenario as named in the submission tree (Interactive is a LoadGen Server run)."""

    OFFLINE = "Offline"
    SERVER = "Server"
    INTERACTIVE = "Interactive"

    @property
    def streams_first_token(self) -> bool:
        """Whether LoadGen needs FirstTokenComplete for this scenario."""
        return self is not Scenario.OFFLINE

    @property
    def loadgen_scenario(self) -> str:
        """The LoadGen TestScenario name that implements this scenario."""
        return "Offline" if self is Scenario.OFFLINE else "Server"


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


@dataclass(frozen=True)
class GenerationRequest:
    """What a backend is asked to generate: one prompt, identified by a request id."""

    request_id: int
    sample_index: int
    input_ids: tuple[int, ...]
    want_first_token: bool = False


@dataclass
class Completion:
    """The response reported to LoadGen for one sample."""

    request_id: int
    sample_index: int
    token_ids: list[int] = field(default_factory=list)
    first_token: int | None = None
    padded_short: bool = False
