"""How a run ends, decided in one place: every path that ends a run reports its cause to `RunEnd`, and the manifest's
status and error, the exit code, the one-line message and whether the process leaves at once all come from its
decision.

The causes: the run finished (its manifest says whether it is VALID: exit 0, or 1 for INVALID or LoadGen errors);
an error (the error's exit code: 2 bad input, 3 environment, 4 failed); Ctrl-C once (LoadGen stopped cleanly) or
twice (leave now), both aborted with 130; SIGTERM before, during or after LoadGen (failed, 4); a lost worker rank
(failed, 4, leave now); an OS error (failed, 4, its one-line explanation); a backend left running native code (leave
without interpreter teardown). Bad input or a missing engine found before LoadGen started leaves nothing behind:
the run directory, which holds only what the harness wrote, is removed so the corrected command can be rerun.

The first decision stands: what happens after it is its consequence (the KeyboardInterrupt a SIGTERM handler
raises, an import cut in half by it, the backend's failure to stop after Ctrl-C). A later report of the same
status may only add detail to the message; a run that was marked failed or aborted is never marked completed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.errors import ConfigError, EnvironmentProblem, HarnessError, Interrupted, RunError
from harness.safe_paths import from_os_error
from harness.types import RunStatus

__all__ = ["Ending", "RunEnd", "leave_now"]

INTERRUPTED_EXIT = Interrupted.exit_code


@dataclass(frozen=True)
class Ending:
    """One decided end of a run."""

    status: RunStatus
    exit_code: int
    message: str | None  # the one line (None: a completed run says nothing)
    leave_now: bool = False  # a thread still runs native code: leave without interpreter teardown
    discard: bool = False  # nothing ran: the run directory is removed instead of recording the end


def leave_now(code: int) -> None:
    """Leave the process at once, without interpreter teardown (threads may still run C++ that cannot be stopped)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


class RunEnd:
    """The single owner of a run's end (see the module docstring). Thread-safe: signal handlers, the SIGTERM
    watchdog and a lost-worker callback report here as well as the run's own thread."""

    def __init__(self, record: Callable[[RunStatus, str | None], None], discard: Callable[[], bool]) -> None:
        self._record = record  # writes the manifest's status and error
        self._discard = discard  # removes a run directory that holds only our own inputs; False if it holds more
        self._lock = threading.RLock()
        self.ending: Ending | None = None
        self.loadgen_started = False

    def decide(self, ending: Ending) -> Ending:
        """Record `ending` unless an ending is decided already (then that one stands; a later report of the same
        status whose message extends it adds that detail). Returns the ending that stands."""
        with self._lock:
            current = self.ending
            if current is not None:
                extends = (ending.status is current.status and ending.message and current.message
                           and ending.message.startswith(current.message) and ending.message != current.message)
                if not extends:
                    return current
                ending = replace(ending, exit_code=current.exit_code,
                                 leave_now=current.leave_now or ending.leave_now)
            if ending.discard and not self.loadgen_started and self._discard():
                self.ending = ending
                return ending
            ending = replace(ending, discard=False)
            self.ending = ending
            self._record(ending.status, ending.message)
            return ending

    def completed(self, exit_code: int) -> Ending:
        """The run finished; exit_code says whether it is VALID (the manifest's own reading)."""
        return self.decide(Ending(RunStatus.COMPLETED, exit_code, None))

    def interrupted(self, message: str, twice: bool = False) -> Ending:
        """Ctrl-C: aborted (130); twice: the process leaves at once."""
        return self.decide(Ending(RunStatus.ABORTED, INTERRUPTED_EXIT, message, leave_now=twice))

    def failed(self, message: str, leave: bool = False) -> Ending:
        """A failure reported by a callback (SIGTERM, a lost worker, a watchdog): failed, exit 4."""
        return self.decide(Ending(RunStatus.FAILED, RunError.exit_code, message, leave_now=leave))

    def from_exception(self, err: BaseException, run_dir: str) -> tuple[Ending, BaseException]:
        """The ending an exception out of the run means, and the error to raise to the CLI (its message saying
        what became of the run directory)."""
        leave = bool(getattr(err, "leaves_native_thread", False))
        if isinstance(err, KeyboardInterrupt):
            ending = self.interrupted("interrupted by the user")
            raised: HarnessError = Interrupted(f"interrupted by the user (run directory {run_dir} marked aborted)")
        elif isinstance(err, Interrupted):
            ending = self.interrupted(str(err))
            raised = err
        elif isinstance(err, HarnessError):
            early = err.exit_code in (ConfigError.exit_code, EnvironmentProblem.exit_code)
            ending = self.decide(Ending(RunStatus.FAILED, err.exit_code, str(err), leave_now=leave, discard=early))
            what = "nothing ran; run directory {} removed" if ending.discard else "run directory {} marked failed"
            err.message = f"{err.message} ({what.format(run_dir)})"
            raised = err
        elif isinstance(err, OSError):
            converted = from_os_error(err, "write the run's files")
            ending = self.decide(Ending(RunStatus.FAILED, converted.exit_code, converted.message, leave_now=leave))
            converted.message = f"{converted.message} (run directory {run_dir} marked failed)"
            raised = converted
        else:
            ending = self.decide(Ending(RunStatus.FAILED, RunError.exit_code, f"{type(err).__name__}: {err}",
                                        leave_now=leave))
            raised = RunError(f"run failed: {type(err).__name__}: {err} (run directory {run_dir} marked failed)")
        if ending.exit_code != raised.exit_code or (ending.status is RunStatus.ABORTED) != isinstance(raised,
                                                                                                      Interrupted):
            raised = _as_decided(ending, run_dir)  # an earlier decision (e.g. SIGTERM) stands over this error
        return ending, raised


def _as_decided(ending: Ending, run_dir: str) -> HarnessError:
    """The error the CLI reports for a decision made before the exception that unwound the run."""
    if ending.status is RunStatus.ABORTED:
        return Interrupted(f"{ending.message} (run directory {run_dir} marked aborted)")
    error = RunError(f"{ending.message} (run directory {run_dir} marked {ending.status.value})")
    error.exit_code = ending.exit_code
    return error
