"""RunEnd, the one owner of how a run ends: which decision stands, what each cause means, what the CLI is told."""

from __future__ import annotations

import errno

import pytest

from harness.backends.core import EngineStopHung
from harness.errors import (
    BackendError,
    ConfigError,
    EnvironmentProblem,
    HarnessError,
    InputError,
    Interrupted,
    RunError,
)
from harness.run_end import Ending, RunEnd
from harness.types import RunStatus


class Recorder:
    """Stands in for the run: what the manifest was told, and whether the directory may be discarded."""

    def __init__(self, discardable: bool = True) -> None:
        self.records: list[tuple[RunStatus, str | None]] = []
        self.discardable = discardable
        self.discarded = 0

    def record(self, status: RunStatus, message: str | None) -> None:
        self.records.append((status, message))

    def discard(self) -> bool:
        self.discarded += 1
        return self.discardable


def _end(discardable: bool = True) -> tuple[RunEnd, Recorder]:
    recorder = Recorder(discardable)
    return RunEnd(recorder.record, recorder.discard), recorder


def test_the_first_decision_stands_and_a_failed_run_is_never_marked_completed() -> None:
    end, recorder = _end()
    first = end.failed("terminated by signal 15 (SIGTERM)")
    assert end.interrupted("interrupted by the user") == first
    assert end.completed(0) == first
    assert recorder.records == [(RunStatus.FAILED, "terminated by signal 15 (SIGTERM)")]


def test_a_later_report_of_the_same_status_may_add_detail_only() -> None:
    end, recorder = _end()
    end.failed("terminated by signal 15 (SIGTERM)")
    refined = end.failed("terminated by signal 15 (SIGTERM); LoadGen did not finish within 20 s", leave=True)
    assert refined.message == "terminated by signal 15 (SIGTERM); LoadGen did not finish within 20 s"
    assert refined.leave_now and refined.exit_code == 4
    end.failed("something unrelated")
    assert [message for _, message in recorder.records] == [
        "terminated by signal 15 (SIGTERM)", "terminated by signal 15 (SIGTERM); LoadGen did not finish within 20 s"]


def test_a_completed_run_takes_the_manifests_exit_code() -> None:
    end, recorder = _end()
    assert end.completed(1) == Ending(RunStatus.COMPLETED, 1, None)
    assert recorder.records == [(RunStatus.COMPLETED, None)]


@pytest.mark.parametrize("error", [ConfigError("bad key"), InputError("bad row"), EnvironmentProblem("no vllm")])
def test_bad_input_found_before_loadgen_removes_the_directory(error: HarnessError) -> None:
    end, recorder = _end()
    ending, raised = end.from_exception(error, "runs/x")
    assert ending.discard and ending.exit_code == error.exit_code and recorder.records == []
    assert raised is error and str(raised).endswith("(nothing ran; run directory runs/x removed)")


def test_bad_input_after_loadgen_started_is_recorded_not_removed() -> None:
    end, recorder = _end()
    end.loadgen_started = True
    ending, raised = end.from_exception(InputError("a late problem"), "runs/x")
    assert not ending.discard and recorder.discarded == 0
    assert (ending.status, ending.exit_code) == (RunStatus.FAILED, 2) and raised.exit_code == 2
    assert str(raised).endswith("(run directory runs/x marked failed)")


def test_a_directory_holding_more_than_our_inputs_is_recorded_not_removed() -> None:
    end, recorder = _end(discardable=False)
    ending, _ = end.from_exception(ConfigError("bad key"), "runs/x")
    assert not ending.discard and recorder.records == [(RunStatus.FAILED, "bad key")]


def test_ctrl_c_is_aborted_with_130() -> None:
    end, _recorder = _end()
    ending, raised = end.from_exception(KeyboardInterrupt(), "runs/x")
    assert (ending.status, ending.exit_code) == (RunStatus.ABORTED, 130) and isinstance(raised, Interrupted)
    assert str(raised) == "interrupted by the user (run directory runs/x marked aborted)"


def test_an_engine_whose_stop_hung_fails_the_run_and_leaves_without_teardown() -> None:
    end, _recorder = _end()
    ending, raised = end.from_exception(EngineStopHung("the vLLM engine did not shut down within 60 s"), "runs/x")
    assert (ending.status, ending.exit_code, ending.leave_now) == (RunStatus.FAILED, 4, True)
    assert isinstance(raised, BackendError) and raised.exit_code == 4


def test_an_os_error_becomes_its_one_line_explanation() -> None:
    end, _recorder = _end()
    error = OSError(errno.ENOSPC, "No space left on device", "runs/x/manifest.json")
    ending, raised = end.from_exception(error, "runs/x")
    assert ending.status is RunStatus.FAILED and "No space left on device" in str(ending.message)
    assert isinstance(raised, HarnessError) and str(raised).endswith("(run directory runs/x marked failed)")


def test_an_unexpected_exception_is_a_failed_run_with_its_type() -> None:
    end, _recorder = _end()
    ending, raised = end.from_exception(ZeroDivisionError("division by zero"), "runs/x")
    assert ending.message == "ZeroDivisionError: division by zero" and isinstance(raised, RunError)


def test_an_exception_after_a_signal_reports_the_signals_decision() -> None:
    """SIGTERM decided 'failed, 4'; the KeyboardInterrupt its handler raised must not turn that into 130."""
    end, _recorder = _end()
    end.failed("terminated by signal 15 (SIGTERM)")
    ending, raised = end.from_exception(KeyboardInterrupt(), "runs/x")
    assert (ending.status, ending.exit_code) == (RunStatus.FAILED, 4)
    assert not isinstance(raised, Interrupted) and raised.exit_code == 4
    assert str(raised) == "terminated by signal 15 (SIGTERM) (run directory runs/x marked failed)"
