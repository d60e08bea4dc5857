"""SIGTERM at any point of a run: the manifest and the error name the signal, whatever the handler interrupted.

CI saw a SIGTERM land while the main thread was importing `rich._emoji_codes`; the handler's own rich print then
needed that half-imported module, and the run was recorded as failed with an ImportError instead of the signal.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import runner
from harness.artifacts import RunArtifacts
from harness.config import load_config
from harness.errors import RunError
from harness.types import RunStatus


class _NoRichInHandlers:
    """Stands in for the rich console: any print while the test's fake execute() runs is a failure."""

    def print(self, *args: object, **kwargs: object) -> None:
        raise ImportError("cannot import name 'EMOJI' from partially initialized module 'rich._emoji_codes'")


@pytest.fixture
def keep_sigterm() -> Iterator[None]:
    """The run installs its SIGTERM handler and, once terminated, ignores SIGINT: both are restored."""
    previous = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGTERM, previous[0])
    signal.signal(signal.SIGINT, previous[1])


def _run_with(execute: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[RunError, Path]:
    monkeypatch.setattr(runner._Run, "execute", execute)
    monkeypatch.setattr(runner._Run, "_term_watchdog", lambda self: None)  # would os._exit the test process
    out = tmp_path / "run"
    with pytest.raises(RunError) as caught:
        runner.run(load_config(None, ["backend.kind=fake", f"output_dir={out}"]), progress=False)
    return caught.value, out


@pytest.mark.usefixtures("keep_sigterm")
@pytest.mark.parametrize("then", [None, ImportError("cannot import name 'EMOJI' from partially initialized module"),
                                  OSError(5, "Input/output error"), RuntimeError("reentrant call")])
def test_whatever_unwinds_after_sigterm_the_signal_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, then: Exception | None) -> None:
    def execute(self: runner._Run) -> None:
        monkeypatch.setattr(runner, "stderr", _NoRichInHandlers())
        try:
            self._on_terminate(signal.SIGTERM, None)
        except KeyboardInterrupt:
            if then is not None:
                raise then from None
            raise

    err, out = _run_with(execute, tmp_path, monkeypatch)
    assert err.exit_code == 4
    assert "terminated by signal 15 (SIGTERM" in err.message and err.message.endswith(f"{out} marked failed)")
    assert err.message.count("marked failed") == 1
    manifest = RunArtifacts(out).read_manifest()
    assert manifest.status is RunStatus.FAILED
    assert manifest.error is not None and manifest.error.startswith("terminated by signal 15 (SIGTERM")
    if then is not None:
        assert f"then {type(then).__name__}: " in manifest.error


@pytest.mark.usefixtures("keep_sigterm")
def test_the_handler_writes_its_line_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    def execute(self: runner._Run) -> None:
        monkeypatch.setattr(runner, "stderr", _NoRichInHandlers())
        self._on_terminate(signal.SIGTERM, None)

    _run_with(execute, tmp_path, monkeypatch)
    assert "terminating: terminated by signal 15 (SIGTERM" in capfd.readouterr().err
