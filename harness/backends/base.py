"""The Backend seam: how the SUT asks for generations and how tokens come back.

A backend receives prompts as token ids and reports, per request, an optional first token (as soon as
it exists, for Server) and then the generated token ids. It never talks to LoadGen: the SUT owns EOS
trimming, n_tokens and response buffers (harness.sut.base), so every backend obeys the same rules.

The sink is given once, to ``start``; it is batch-first: a backend reports what it has in one call per
batch (``first_tokens``, ``complete_batch`` or, for a token matrix, ``complete_rows``), and one LoadGen
call stands behind each. Threading contract: ``submit`` returns at once; the backend calls the sink from
its own thread(s). For each request it reports a first token at most once (only when the request wants
one), then exactly one completion or ``fail``.

A factory (``harness.backends.<engine>.factory.create``) receives its own options and a ``BackendSetup``,
never the whole run config; ``harness.backends.registry`` finds it by kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from harness.backends.sampling import SamplingSpec
from harness.settings import ModelConfig
from harness.types import GenerationRequest

__all__ = ["Backend", "BackendInfo", "BackendReport", "BackendSetup", "Completion", "SinkWrapper", "TokenSink",
           "UnitLoad", "merge_reports", "packed_completions", "packed_response_lengths",
           "response_lengths"]

Completion = tuple[int, Sequence[int]]  # (request_id, generated token ids)


class TokenSink(Protocol):
    """Receives a backend's output, batch by batch; implemented by the SUT (and by the layers that wrap it)."""

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """First generated tokens of several requests, as (request_id, token_id) pairs."""

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        """Finished requests, as (request_id, generated token ids) pairs (prompt excluded; may end with EOS
        or padding)."""

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """Finished requests as a matrix: row k holds request k's generated ids; whatever follows a row's
        first EOS is ignored, and a row without EOS is used whole (max_new_tokens reached)."""

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """Finished requests packed in one int32 array: request k's generated ids are
        buffer[offsets[k]:offsets[k] + lengths[k]] (offsets and lengths int64 arrays); as complete_batch otherwise."""

    def fail(self, request_id: int, error: BaseException) -> None:
        """The request could not be served."""


def packed_completions(request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                       lengths: np.ndarray) -> list[Completion]:
    """complete_packed's arguments as complete_batch's: (request id, its ids as a list) pairs."""
    return [(request_id, buffer[start:start + length].tolist())
            for request_id, start, length in zip(request_ids, offsets.tolist(), lengths.tolist(), strict=True)]


_LENGTH_BLOCK_ELEMENTS = 1 << 16  # about 64 KiB of booleans per step: reused heap memory, no fresh pages


def response_lengths(rows: np.ndarray, eos_token_id: int, stops: Sequence[int] = ()) -> np.ndarray:
    """Per row of generated ids: the index of the first EOS (or other stop id) plus one, or the row width when there
    is none.

    Works through the matrix in blocks of rows, so the temporary EOS mask stays small (a whole-batch mask
    is fresh memory each time, and first-touch page faults cost more than the comparison).
    """
    count, width = rows.shape
    lengths = np.full(count, width, dtype=np.int64)
    if width == 0:
        return lengths
    step = max(1, _LENGTH_BLOCK_ELEMENTS // max(width, 1))
    for start in range(0, count, step):
        block = rows[start:start + step]
        is_eos = np.isin(block, (eos_token_id, *stops)) if stops else block == eos_token_id
        first = is_eos.argmax(axis=1)
        found = is_eos[np.arange(len(first)), first]
        lengths[start:start + step] = np.where(found, first + 1, width)
    return lengths


class SinkWrapper:
    """A sink in front of another: every call is forwarded as it is; subclasses override what they observe."""

    def __init__(self, sink: TokenSink) -> None:
        self.sink = sink

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        """Forward."""
        self.sink.first_tokens(firsts)

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        """Forward."""
        self.sink.complete_batch(completions)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        """Forward."""
        self.sink.complete_rows(request_ids, rows)

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        """Through complete_batch, so that a subclass observing completions there sees these too (a subclass that
        can forward them packed overrides this)."""
        self.complete_batch(packed_completions(request_ids, buffer, offsets, lengths))

    def fail(self, request_id: int, error: BaseException) -> None:
        """Forward."""
        self.sink.fail(request_id, error)


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


@dataclass(frozen=True)
class UnitLoad:
    """What one serving unit a backend drove (an endpoint URL, a server) handled during the run."""

    name: str
    requests: int = 0
    tokens: int = 0
    errors: int = 0
    version: str = ""


@dataclass(frozen=True)
class BackendReport:
    """What a backend tells the manifest after the run, in engine-neutral terms.

    `load`: one row per serving unit the backend drove itself (the endpoint backend: one per URL; an
    in-process engine: none, the dispatcher's per-replica counters cover it). `sections`: named blocks of
    plain JSON data, recorded as `details.<name>` (the endpoint backend's "endpoint", the output cache's
    "output_cache"). Wrappers pass their inner backend's report through and may add their own section.
    """

    load: tuple[UnitLoad, ...] = ()
    sections: dict[str, Any] = field(default_factory=dict)

    def with_section(self, name: str, value: Any) -> BackendReport:
        """This report with one more section."""
        return BackendReport(self.load, {**self.sections, name: value})


def merge_reports(reports: Sequence[BackendReport]) -> BackendReport:
    """Several replicas' reports as one: load rows concatenated in order; a section every replica reports
    the same way is kept once, one that differs becomes the list of the replicas' values."""
    load = tuple(unit for report in reports for unit in report.load)
    names = list(dict.fromkeys(name for report in reports for name in report.sections))
    sections: dict[str, Any] = {}
    for name in names:
        values = [report.sections[name] for report in reports if name in report.sections]
        sections[name] = values[0] if all(value == values[0] for value in values) else values
    return BackendReport(load, sections)


@dataclass(frozen=True)
class BackendSetup:
    """What a backend factory receives besides its own options: the model, the decoding, the scenario's needs."""

    model: ModelConfig
    sampling: SamplingSpec
    streams_first_token: bool
    replica_index: int = 0
    replicas: int = 1
    oracle_answers: Callable[[], list[list[int]]] | None = None  # fake "oracle": reference answers as token ids
    tokenizer: Any = None  # the run's tokenizer, for an engine that must turn returned text into ids (opt-in)


class Backend(Protocol):
    """A text generator behind the SUT. Implementations: each engine, the output cache, the dispatcher, MPI proxies."""

    def start(self, sink: TokenSink) -> BackendInfo:
        """Load the model and keep `sink` for every result; return what the harness must know.
        Raises BackendError on failure."""

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Before the timed run: get ready for prompts of up to `longest_prompt` tokens in batches of these
        sizes (caches, compiled graphs). Generates nothing for LoadGen. Returns a note for the manifest."""

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests (the caller has ordered them); return immediately."""

    def cancel_all(self) -> None:
        """Drop queued work; requests still running may complete or fail."""

    def stop(self) -> None:
        """Release the model and threads. Idempotent."""

    def report(self) -> BackendReport:
        """What the manifest records about this backend's run (call before stop; empty when nothing to say)."""


def packed_response_lengths(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, eos_token_id: int,
                            stops: Sequence[int] = ()) -> np.ndarray:
    """response_lengths for responses packed in one array (response k: buffer[offsets[k]:][:lengths[k]]): the index of
    its first EOS (or other stop id) plus one, or its length when it has none. One pass over the buffer."""
    lengths = np.asarray(lengths, dtype=np.int64)
    is_stop = np.isin(buffer, (eos_token_id, *stops)) if stops else np.asarray(buffer) == eos_token_id
    positions = np.flatnonzero(is_stop)
    if not len(positions) or not len(lengths):
        return lengths.copy()
    offsets = np.asarray(offsets, dtype=np.int64)
    after = np.searchsorted(positions, offsets)  # the first stop at or after each response's start
    stop = positions[np.minimum(after, len(positions) - 1)]
    inside = (after < len(positions)) & (stop < offsets + lengths)
    return np.where(inside, stop - offsets + 1, lengths)
