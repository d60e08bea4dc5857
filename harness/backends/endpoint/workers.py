"""The endpoint client's worker processes from the LoadGen process's side: start (a fresh interpreter each, one socket
pair each), wait until each has opened its connections, describe one that died, stop them within a bound, kill what
is left.

A worker is a new interpreter (`sys.executable -c ...`), as multiprocessing's `spawn` start method makes, but without
re-running the LoadGen process's main module in it (spawn would import the `harness` CLI there); it imports only the
endpoint client's modules. Its own session (start_new_session) keeps a terminal's Ctrl-C away from it, and it leaves
when its connection ends, so no worker outlives the LoadGen process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from harness.backends.endpoint.messages import receive, send
from harness.backends.endpoint.process import WorkerConfig
from harness.errors import BackendError

__all__ = ["SILENT_S", "WorkerHandle", "close_connections", "frozen_workers", "launch_workers", "stop_workers"]

SILENT_S = 10.0  # a running worker that sends nothing (not even its 1 s heartbeat) for this long is frozen

_START_S = 60.0  # a worker's interpreter start and imports, on top of its connection warm-up
_ENTRY = "import sys; from harness.backends.endpoint.process import main; sys.exit(main(sys.argv[1:]))"
_SOURCE_ROOT = str(Path(__file__).resolve().parents[3])  # the tree this harness runs from, for the workers


@dataclass
class WorkerHandle:
    """One worker process and the LoadGen process's end of its connection."""

    index: int
    process: subprocess.Popen[bytes]
    conn: Connection
    gone: bool = False  # its connection ended
    heard: float = 0.0  # time.monotonic() of its last message
    frozen: str | None = None  # why it was killed as frozen
    loop: str = ""  # its event loop, as it reported at start

    @property
    def name(self) -> str:
        """How messages name it."""
        return f"endpoint client worker {self.index} (pid {self.process.pid})"

    def exit_text(self, wait_s: float = 2.0) -> str:
        """How it ended: its exit code or signal (waits up to wait_s for the process to be reaped), or why it was
        killed as frozen."""
        if self.frozen is not None:
            return self.frozen
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(wait_s)
        code = self.process.returncode
        if code is None:
            return "its connection closed, process still running"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by signal {code} ({signal.Signals(-code).name})"
        return f"exit code {code}"

    def send(self, message: object) -> bool:
        """Send one message; False when the worker is gone."""
        if self.gone:
            return False
        try:
            send(self.conn, message)
            return True
        except OSError:
            return False


def _spawn(config: WorkerConfig) -> WorkerHandle:
    ours, theirs = socket.socketpair()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_SOURCE_ROOT, env.get("PYTHONPATH", "")) if p)
    try:
        process = subprocess.Popen([sys.executable, "-c", _ENTRY, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                                   stdin=subprocess.DEVNULL, start_new_session=True, env=env, close_fds=True)
    finally:
        theirs.close()
    handle = WorkerHandle(config.index, process, Connection(ours.detach()))
    handle.send(config)
    return handle


def launch_workers(configs: list[WorkerConfig], timeout_s: float) -> list[WorkerHandle]:
    """Start one worker per config and wait (at most _START_S + timeout_s) until each has opened its connections; a
    worker that fails or dies at start stops them all and raises BackendError naming it (and the URL, where one)."""
    handles: list[WorkerHandle] = []
    try:
        handles = [_spawn(config) for config in configs]
        deadline = time.monotonic() + _START_S + timeout_s
        for handle in handles:
            if not handle.conn.poll(max(0.0, deadline - time.monotonic())):
                raise BackendError(f"{handle.name} did not start within {_START_S + timeout_s:g} s",
                                   hint="see its output above; is the machine overloaded?")
            try:
                kind, detail, *loop = receive(handle.conn)
            except (EOFError, OSError):
                raise BackendError(f"{handle.name} died at start ({handle.exit_text()})",
                                   hint="see its output above") from None
            if kind != "ready":
                raise BackendError(f"{handle.name}: {detail}", hint="check the server and backend.connect_timeout_s")
            handle.loop = loop[0] if loop else ""
            handle.heard = time.monotonic()
    except BaseException:
        stop_workers(handles, 5.0)
        close_connections(handles)
        raise
    return handles


def frozen_workers(handles: list[WorkerHandle], now: float) -> list[WorkerHandle]:
    """Kill every live worker that has sent nothing for SILENT_S s (nothing waiting unread either): stopped (SIGSTOP),
    deadlocked or starved; returns them (their connections then end, which fails the run naming them)."""
    frozen = []
    for handle in handles:
        if handle.gone or handle.frozen is not None or now - handle.heard <= SILENT_S:
            continue
        with contextlib.suppress(OSError):
            if handle.conn.poll():
                continue
        handle.frozen = f"sent nothing, not even its heartbeat, for {now - handle.heard:.0f} s (frozen); killed"
        with contextlib.suppress(OSError):
            handle.process.kill()
        frozen.append(handle)
    return frozen


def stop_workers(handles: list[WorkerHandle], timeout_s: float) -> list[WorkerHandle]:
    """Ask every worker to stop, wait for them together at most timeout_s, kill the rest; returns those killed."""
    for handle in handles:
        handle.send(("stop", None))
    deadline = time.monotonic() + timeout_s
    killed = []
    for handle in handles:
        try:
            handle.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            handle.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                handle.process.wait(5)
            killed.append(handle)
    return killed


def close_connections(handles: list[WorkerHandle]) -> None:
    """Close the LoadGen process's ends (after the thread reading them has ended)."""
    for handle in handles:
        with contextlib.suppress(OSError):
            handle.conn.close()
