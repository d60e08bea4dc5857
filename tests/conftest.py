"""Shared fixtures: a recording Completer and a scratch working directory."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
os.environ.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")

REPO = Path(__file__).resolve().parent.parent


class RecordingCompleter:
    """Stands in for LoadGen's completion calls: records (kind, response_id, tokens) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, list[int]]] = []
        self.done = threading.Event()
        self.expected = 0
        self._lock = threading.Lock()

    def first_token(self, response_id: int, token_id: int) -> None:
        with self._lock:
            self.events.append(("first", response_id, [token_id]))

    def complete(self, response_id: int, token_ids: Sequence[int]) -> None:
        with self._lock:
            self.events.append(("complete", response_id, list(token_ids)))
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
