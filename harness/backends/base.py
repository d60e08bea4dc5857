"""The Backend seam: how the SUT asks for generations and how tokens come back; lazy backend registry.

A backend receives prompts as token ids and reports, per request, an optional first token (as soon as
it exists, for Server) and then the generated token ids. It never talks to LoadGen: the SUT owns EOS
trimming, n_tokens and response buffers (harness.sut.base), so every backend obeys the same rules.

Threading contract: ``submit`` returns at once; the backend calls the sink from its own thread(s).
For each request it calls ``first_token`` at most once, then exactly one of ``complete`` or ``fail``.
A backend that produces many results at once (a batch's prefill, a finished batch) reports them with
``first_tokens`` / ``complete_batch``: one call, and one LoadGen call behind it, per batch.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from harness.errors import ConfigError, EnvironmentProblem
from harness.types import GenerationRequest

if TYPE_CHECKING:
    from harness.config import RunConfig


Completion = tuple[int, Sequence[int]]  # (request_id, generated token ids)


class TokenSink(Protocol):
    """Receives a backend's output; implemented by the SUT (and by the MPI dispatch layer)."""

    def first_token(self, request_id: int, token_id: int) -> None:
        """The first generated token of a request."""

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """First tokens of several requests, as (request_id, token_id) pairs."""

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        """All generated token ids of a request (prompt excluded; may end with EOS or padding)."""

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        """Several finished requests, as (request_id, token_ids) pairs."""

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """Several finished requests as a matrix: row k holds request k's generated ids; whatever follows a
        row's first EOS is ignored, and a row without EOS is used whole (max_new_tokens reached)."""

    def fail(self, request_id: int, error: BaseException) -> None:
        """The request could not be served."""


_LENGTH_BLOCK_ELEMENTS = 1 << 16  # about 64 KiB of booleans per step: reused heap memory, no fresh pages


def response_lengths(rows: np.ndarray, eos_token_id: int) -> np.ndarray:
    """Per row of generated ids: the index of the first EOS plus one, or the row width when there is none.

    Works through the matrix in blocks of rows, so the temporary EOS mask stays small (a whole-batch mask
    is fresh memory each time, and first-touch page faults cost more than the comparison).
    """
    count, width = rows.shape
    lengths = np.full(count, width, dtype=np.int64)
    if width == 0:
        return lengths
    step = max(1, _LENGTH_BLOCK_ELEMENTS // max(width, 1))
    for start in range(0, count, step):
        is_eos = rows[start:start + step] == eos_token_id
        first = is_eos.argmax(axis=1)
        found = is_eos[np.arange(len(first)), first]
        lengths[start:start + step] = np.where(found, first + 1, width)
    return lengths


class SinkBase:
    """Batch methods for a sink that handles one request at a time: they call the single ones in order."""

    def first_token(self, request_id: int, token_id: int) -> None:
        """Subclasses implement."""
        raise NotImplementedError

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        """Subclasses implement."""
        raise NotImplementedError

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """One first_token call per pair."""
        for request_id, token_id in firsts:
            self.first_token(request_id, token_id)

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        """One complete call per pair."""
        for request_id, token_ids in completions:
            self.complete(request_id, token_ids)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """The rows as lists, through complete_batch."""
        self.complete_batch(list(zip(request_ids, np.asarray(rows).tolist(), strict=True)))


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

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Before the timed run: get ready for prompts of up to `longest_prompt` tokens in batches of these
        sizes (caches, compiled graphs). Generates nothing for LoadGen. Returns a note for the manifest."""

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
