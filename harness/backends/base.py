"""The Backend seam: how the SUT asks for generations and how tokens come back; lazy backend registry.

A backend receives prompts as token ids and reports, per request, an optional first token (as soon as
it exists, for Server) and then the generated token ids. It never talks to LoadGen: the SUT owns EOS
trimming, n_tokens and response buffers (harness.sut.base), so every backend obeys the same rules.

Threading contract: ``submit`` returns at once; the backend calls the sink from its own thread(s).
For each request it calls ``first_token`` at most once, then exactly one of ``complete`` or ``fail``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from harness.errors import ConfigError, EnvironmentProblem
from harness.types import GenerationRequest

if TYPE_CHECKING:
    from harness.config import RunConfig


class TokenSink(Protocol):
    """Receives a backend's output; implemented by the SUT (and by the MPI dispatch layer)."""

    def first_token(self, request_id: int, token_id: int) -> None:
        """The first generated token of a request."""

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        """All generated token ids of a request (prompt excluded; may end with EOS or padding)."""

    def fail(self, request_id: int, error: BaseException) -> None:
        """The request could not be served."""


@dataclass(frozen=True)
class BackendInfo:
    """What a started backend tells the harness about itself."""

    name: str
    eos_token_id: int
    max_batch_size: int
    streaming: bool
    submittable: bool = True
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


class Backend(Protocol):
    """A text generator behind the SUT. Implementations: fake, hf, trtllm, dispatch (MPI replicas)."""

    def start(self) -> BackendInfo:
        """Load the model; return what the harness must know. Raises BackendError on failure."""

    def submit(self, requests: Sequence[GenerationRequest], sink: TokenSink) -> None:
        """Queue requests (the caller has ordered them); return immediately."""

    def cancel_all(self) -> None:
        """Drop queued work; requests still running may complete or fail."""

    def stop(self) -> None:
        """Release the model and threads. Idempotent."""


class BackendFactory(Protocol):
    """A callable that builds a backend from the run config."""

    def __call__(self, config: RunConfig) -> Backend:
        """Build (not start) the backend."""


# kind -> "module:factory". Modules are imported only when their kind is chosen.
BACKENDS: dict[str, str] = {
    "fake": "harness.backends.fake:create_fake_backend",
    "hf": "harness.backends.hf:create_hf_backend",
    "trtllm": "harness.backends.trtllm:create_trtllm_backend",
}


def create(config: RunConfig) -> Backend:
    """Build the backend selected by config.backend.kind, importing its module lazily."""
    kind = config.backend.kind
    target = BACKENDS.get(kind)
    if target is None:
        raise ConfigError(f"backend.kind is {kind!r}; expected one of {', '.join(sorted(BACKENDS))}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise EnvironmentProblem(
            f"backend {kind!r} needs a package that is not installed: {err.name or err}",
            hint=f"install the backend's dependencies (see README, backend '{kind}')",
        ) from err
    factory: BackendFactory = getattr(module, attr)
    return factory(config)
