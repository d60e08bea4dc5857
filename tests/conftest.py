"""Shared fixtures: a recording Completer and a scratch working directory."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

REPO = Path(__file__).resolve().parent.parent

# A test run started in the background of a non-interactive shell inherits SIGINT ignored, and so would every
# process the tests start (an ignored signal stays ignored across exec): the Ctrl-C tests could never reach them.
# A handler here is reset to the default in each child at exec, so the children get Ctrl-C as a terminal gives it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


class RecordingCompleter:
    """Stands in for LoadGen's completion calls: records (kind, response_id, tokens) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, list[int]]] = []
        self.calls: list[tuple[str, int]] = []  # (method, responses in the call): one LoadGen call each
        self.done = threading.Event()
        self.expected = 0
        self._lock = threading.Lock()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        with self._lock:
            self.calls.append(("first_tokens", len(firsts)))
            self.events.extend(("first", response_id, [token_id]) for response_id, token_id in firsts)

    def complete_buffer(self, response_ids: Sequence[int], buffer: np.ndarray, offsets: Sequence[int],
                        lengths: Sequence[int]) -> None:
        assert buffer.dtype == np.int32, f"LoadGen reads int32 responses, got {buffer.dtype}"
        with self._lock:
            self.calls.append(("complete_buffer", len(response_ids)))
            for response_id, offset, length in zip(response_ids, offsets, lengths, strict=True):
                self.events.append(("complete", response_id, buffer[offset:offset + length].tolist()))
            if sum(1 for e in self.events if e[0] == "complete") >= self.expected:
                self.done.set()


@pytest.fixture
def completer() -> RecordingCompleter:
    return RecordingCompleter()


@pytest.fixture
def in_tmp_cwd(tmp_path: Path) -> Iterator[Path]:
    """Run a test with tmp_path as the working directory."""
    previous = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(previous)
