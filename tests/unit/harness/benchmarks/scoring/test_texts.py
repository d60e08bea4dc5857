"""prepare_texts' forked workers: SIGTERM from Pool.terminate() must not run the parent's handler in them."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from types import FrameType

import pytest

from harness.benchmarks.scoring import texts
from harness.benchmarks.scoring.sentences import DEFAULT_SPLITTER
from harness.runner import _Run


class _Tokenizer:
    """batch_decode as transformers' tokenizers have it (ids -> text), enough for the workers."""

    def batch_decode(self, ids: list[list[int]], skip_special_tokens: bool = True) -> list[str]:
        return [" ".join(f"w{token}" for token in row) + "." for row in ids]


def test_workers_do_not_run_the_parents_sigterm_handler(tmp_path: Path) -> None:
    """The issue-17 bug: a full-size accuracy run printed 'terminated by signal 15 ... marked failed'."""
    marker = tmp_path / "handler-ran"

    def handler(signum: int, _frame: FrameType | None) -> None:
        marker.write_text(f"{os.getpid()}\n")
        os._exit(4)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        tokens = [[i, i + 1, i + 2] for i in range(texts.PARALLEL_MIN_SAMPLES * 2)]
        refs = [f"w{i} w{i + 1}." for i in range(len(tokens))]
        result = texts.prepare_texts(_Tokenizer(), tokens, refs, splitter=DEFAULT_SPLITTER, workers=2)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert len(result.predictions) == len(tokens)
    assert not marker.exists(), f"a worker ran the parent's SIGTERM handler (pid {marker.read_text().strip()})"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_run_sigterm_handler_leaves_a_forked_child_quietly(tmp_path: Path) -> None:
    """Even if a child gets the handler, it exits 128+15 without writing the manifest or printing."""
    state = _Run.__new__(_Run)
    state.pid = os.getpid()
    state.finish = lambda *a, **k: (tmp_path / "finished").write_text("x")  # type: ignore[method-assign]
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        state._on_terminate(signal.SIGTERM, None)
        os._exit(0)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 128 + signal.SIGTERM
    assert not (tmp_path / "finished").exists()
