"""Runs one stage command as a child process: output shown live and kept in a log, child dies with us."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import harness

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Finished:
    """How a stage process ended: its exit code and the last lines it printed."""

    exit_code: int
    tail: tuple[str, ...]

    def error_line(self) -> str | None:
        """The last 'error: ...' line the command printed (project CLIs print exactly one)."""
        errors = [line.removeprefix("error: ") for line in self.tail if line.startswith("error: ")]
        return errors[-1] if errors else None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGKILL when the pipeline process dies, so no orphan keeps writing."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


def child_environment() -> dict[str, str]:
    """The environment for stage commands: they import the same harness code as this process."""
    source_root = str(Path(harness.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH", "")) if p)
    return env


def run_logged(argv: Sequence[str], log_path: Path, cwd: Path | None = None) -> Finished:
    """Run argv, echoing its output to stderr and writing it to log_path; return exit code and tail."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=40)
    preexec = _die_with_parent if sys.platform.startswith("linux") else None
    with log_path.open("w") as log, subprocess.Popen(
        list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_environment(),
        cwd=cwd, preexec_fn=preexec,
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sys.stderr.write(line)
                log.write(line)
                log.flush()
                tail.append(line.rstrip("\n"))
            code = process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise
    return Finished(code, tuple(tail))


def _stop(process: subprocess.Popen[str]) -> None:
    """After Ctrl-C (which the child also got): give it time to mark its run aborted, then kill it."""
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
