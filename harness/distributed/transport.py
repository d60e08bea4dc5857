"""Requests and responses between the LoadGen rank and worker ranks over MPI (the only mpi4py importer).

Rank 0 holds one RemoteReplica per worker rank. A worker runs an ordinary local backend and streams
its first tokens and completions back. Workers send a heartbeat every second; a worker that dies or
stops answering is detected within `worker_timeout_s`, and its requests fail with the rank and host
named, so the run is marked failed instead of hanging. A worker's first message (HELLO) carries its
process identity, so that when the launcher SIGTERMs rank 0 right after a worker died (mpirun does, long
before a heartbeat is missed) rank 0 names the dead rank: on its own machine by checking the worker's pid,
elsewhere by which ranks stopped answering.

Messages are pickled Python tuples; tags say what they are. Results travel in the batches the worker's
backend reported them in (first tokens, completions, or a token matrix per message), so one LoadGen call
per backend batch holds across ranks too. Both sides poll with Iprobe and a short sleep instead of
blocking receives, which would spin a CPU core inside Open MPI.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from mpi4py import MPI

from harness.backends.base import Backend, BackendInfo, BackendReport, Completion, TokenSink, packed_completions
from harness.distributed.launch import ProcessIdentity, process_gone, process_identity
from harness.errors import BackendError
from harness.types import GenerationRequest, request_ids_of

__all__ = ["Receiver", "RemoteReplica", "serve_worker", "world"]

(TAG_READY, TAG_REQUESTS, TAG_FIRST, TAG_DONE, TAG_FAIL, TAG_HEARTBEAT, TAG_STOP, TAG_CANCEL, TAG_ERROR,
 TAG_SNAPSHOT, TAG_WARM_UP, TAG_WARMED, TAG_ROWS, TAG_REPORT, TAG_HELLO) = range(1, 16)
REPORT_WAIT_S = 10.0  # how long rank 0 waits for a worker's backend report (a lost worker reports nothing)
HEARTBEAT_S = 1.0
# A worker SIGTERMed (the launcher stopping the job) stays this long before it leaves, so that rank 0, stopped
# at the same moment, still sees it alive and names only the rank that died first.
TERM_LINGER_S = 2.0
POLL_S = 0.001
_RECEIVERS: list[Receiver] = []  # rank 0's live receivers, so a SIGTERM handler can name a dead worker


def describe_lost_workers(wait_s: float = 0.0) -> str:
    """Worker ranks known lost, gone (their pid checked on this machine), or silent for over 1.5 heartbeats
    while others still beat ('' if none).

    Under mpirun a worker killed with -9 makes the launcher SIGTERM rank 0 at once (and SIGKILL it about a
    second later), so this answers at once; waiting up to wait_s lets a remote rank's silence show.
    """
    deadline = time.monotonic() + wait_s
    while True:
        found = [text for receiver in _RECEIVERS for text in receiver.describe_lost()]
        if found or time.monotonic() >= deadline:
            return "; ".join(found)
        time.sleep(0.1)


def world() -> Any:
    """MPI.COMM_WORLD."""
    return MPI.COMM_WORLD


class RemoteReplica:
    """Backend proxy for one worker rank, driven by the shared Receiver on rank 0."""

    def __init__(self, comm: Any, rank: int, receiver: Receiver) -> None:
        self.comm, self.rank, self.receiver = comm, rank, receiver
        self.host = f"rank {rank}"
        self._sink: TokenSink | None = None
        self._open: set[int] = set()  # request ids sent to the worker and not yet answered
        self._lock = threading.Lock()
        self._warming = False
        receiver.register(self)

    @property
    def label(self) -> str:
        """'rank N (host)' for progress lines and errors."""
        return f"rank {self.rank} ({self.host})"

    def start(self, sink: TokenSink) -> BackendInfo:
        """Keep the sink; wait for the worker's READY message (its backend has loaded)."""
        self._sink = sink
        info, host = self.receiver.wait_ready(self.rank)
        self.host = host
        return info

    def begin_warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> None:
        """Ask the worker to warm its backend up; warm_up() waits for the answer (so ranks warm up together)."""
        self.receiver.warmed.pop(self.rank, None)
        self.receiver.send(self.rank, TAG_WARM_UP, (int(longest_prompt), [int(size) for size in batch_sizes]))
        self._warming = True

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """The worker's backend warm-up, before LoadGen starts; returns its note."""
        if not self._warming:
            self.begin_warm_up(longest_prompt, batch_sizes)
        self._warming = False
        return self.receiver.wait_warmed(self.rank)

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Send requests to the worker, in one message."""
        with self._lock:
            self._open.update(request_ids_of(requests))
        self.receiver.send(self.rank, TAG_REQUESTS, [(r.request_id, r.sample_index, r.input_ids, r.want_first_token)
                                                     for r in requests])

    def report(self) -> BackendReport:
        """The worker's backend report (asked for over MPI); empty when the worker is lost or does not answer."""
        return self.receiver.ask_report(self.rank)

    def cancel_all(self) -> None:
        """Ask the worker to drop queued work."""
        self.receiver.send(self.rank, TAG_CANCEL, None)

    def stop(self) -> None:
        """Tell the worker to finish."""
        self.receiver.send(self.rank, TAG_STOP, None)

    def deliver(self, tag: int, payload: Any) -> None:
        """Called by the receiver thread for this rank's messages: one sink call per message."""
        sink = self._sink
        if sink is None:
            return
        if tag == TAG_FIRST:
            with self._lock:
                firsts = [pair for pair in payload if pair[0] in self._open]
            if firsts:
                sink.first_tokens(firsts)
        elif tag == TAG_DONE:
            with self._lock:
                done = [item for item in payload if self._close(item[0])]
            if done:
                sink.complete_batch(done)
        elif tag == TAG_ROWS:
            request_ids, rows = payload
            with self._lock:
                keep = [k for k, request_id in enumerate(request_ids) if self._close(request_id)]
            if len(keep) == len(request_ids):
                sink.complete_rows(request_ids, rows)
            elif keep:
                sink.complete_rows([request_ids[k] for k in keep], rows[keep])
        elif tag == TAG_FAIL:
            with self._lock:
                known = self._close(payload[0])
            if known:
                sink.fail(payload[0], BackendError(f"rank {self.rank} ({self.host}): {payload[1]}"))

    def _close(self, request_id: int) -> bool:
        """Under the lock: forget an open request; False when it was not open (late or duplicate)."""
        if request_id in self._open:
            self._open.discard(request_id)
            return True
        return False

    def fail_everything(self, reason: str) -> None:
        """The worker is gone: fail every request it holds."""
        with self._lock:
            pending, self._open = self._open, set()
        if self._sink is not None:
            for request_id in sorted(pending):
                self._sink.fail(request_id, BackendError(reason))


class Receiver:
    """Rank 0's single polling thread: routes worker messages and watches heartbeats."""

    def __init__(self, comm: Any, timeout_s: float, on_worker_lost: Callable[[str], None]) -> None:
        self.comm = comm
        self.timeout_s = timeout_s
        self.on_worker_lost = on_worker_lost
        self.replicas: dict[int, RemoteReplica] = {}
        self.ready: dict[int, tuple[BackendInfo, str]] = {}
        self.identities: dict[int, ProcessIdentity] = {}  # from each worker's HELLO
        self.last_seen: dict[int, float] = {}
        self.lost: dict[int, str] = {}
        self.snapshots: dict[int, Any] = {}
        self.warmed: dict[int, str | None] = {}
        self.reports: dict[int, BackendReport] = {}
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._last_beat = 0.0
        self._thread = threading.Thread(target=self._loop, name="mpi-receiver", daemon=True)
        _RECEIVERS.append(self)

    def host_of(self, rank: int) -> str:
        """The worker's host as it reported it (HELLO or READY), else 'unknown host'."""
        if rank in self.identities:
            return self.identities[rank].host
        return self.ready.get(rank, (None, "unknown host"))[1]

    def describe_lost(self) -> list[str]:
        """One phrase per worker known lost, whose process is gone from this machine, or that went silent."""
        now = time.monotonic()
        found = list(self.lost.values())
        unknown: dict[int, float] = {}  # ranks whose process cannot be checked from here: last heard, seconds ago
        for rank, seen in sorted(self.last_seen.items()):
            if rank in self.lost:
                continue
            identity = self.identities.get(rank)
            gone = None if identity is None else process_gone(identity)
            if identity is not None and gone:
                found.append(f"worker rank {rank} (pid {identity.pid} on {identity.host}) is gone: it exited or "
                             "was killed, and the launcher then stopped rank 0")
            elif gone is None:
                unknown[rank] = now - seen
        silent = {rank: age for rank, age in unknown.items() if age > 1.5 * HEARTBEAT_S}
        if silent and len(silent) < len(self.last_seen):
            found += [f"worker rank {rank} on {self.host_of(rank)} stopped answering {age:.1f} s ago (it most "
                      "likely exited first)" for rank, age in silent.items()]
        return found

    def register(self, replica: RemoteReplica) -> None:
        """Route this rank's messages to replica."""
        self.replicas[replica.rank] = replica
        self.last_seen[replica.rank] = time.monotonic()

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def send(self, rank: int, tag: int, payload: Any) -> None:
        """Send to a worker unless it is already known lost."""
        if rank in self.lost:
            return
        with self._send_lock:
            self.comm.send(payload, dest=rank, tag=tag)

    def wait_ready(self, rank: int) -> tuple[BackendInfo, str]:
        """Block until the worker reports its backend loaded, or fails."""
        while rank not in self.ready:
            if rank in self.lost:
                raise BackendError(self.lost[rank], hint="see the worker's output above for its own error")
            time.sleep(0.05)
        return self.ready[rank]

    def wait_warmed(self, rank: int) -> str | None:
        """Block until the worker reports its warm-up done (its note), or is lost."""
        while rank not in self.warmed:
            if rank in self.lost:
                raise BackendError(self.lost[rank], hint="see the worker's output above for its own error")
            time.sleep(0.05)
        return self.warmed.pop(rank)

    def ask_report(self, rank: int, timeout_s: float = REPORT_WAIT_S) -> BackendReport:
        """Ask one worker for its backend's report; wait up to timeout_s (a lost worker: an empty report)."""
        self.reports.pop(rank, None)
        self.send(rank, TAG_REPORT, None)
        deadline = time.monotonic() + timeout_s
        while rank not in self.reports and rank not in self.lost and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.reports.pop(rank, BackendReport())

    def gather_snapshots(self, timeout_s: float = 15.0) -> list[Any]:
        """Ask every live worker for its network counter snapshot (JSON dicts); wait up to timeout_s."""
        ranks = [rank for rank in self.replicas if rank not in self.lost]
        for rank in ranks:
            self.snapshots.pop(rank, None)
            self.send(rank, TAG_SNAPSHOT, None)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(r not in self.snapshots for r in ranks if r not in self.lost):
            time.sleep(0.01)
        return [self.snapshots[rank] for rank in ranks if rank in self.snapshots]

    def close(self) -> None:
        """Stop polling."""
        if self in _RECEIVERS:
            _RECEIVERS.remove(self)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat_workers(self) -> None:
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = now
        for rank in self.replicas:
            try:
                self.send(rank, TAG_HEARTBEAT, None)
            except Exception:  # a dead peer: the heartbeat check reports it
                continue

    def _loop(self) -> None:
        status = MPI.Status()
        while not self._stop.is_set():
            self._beat_workers()
            if self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                source, tag = status.Get_source(), status.Get_tag()
                payload = self.comm.recv(source=source, tag=tag)
                self.last_seen[source] = time.monotonic()
                self._handle(source, tag, payload)
            else:
                self._check_heartbeats()
                time.sleep(POLL_S)

    def _handle(self, source: int, tag: int, payload: Any) -> None:
        if tag == TAG_HELLO:
            if isinstance(payload, ProcessIdentity):
                self.identities[source] = payload
        elif tag == TAG_READY:
            self.ready[source] = payload
        elif tag == TAG_SNAPSHOT:
            self.snapshots[source] = payload
        elif tag == TAG_WARMED:
            self.warmed[source] = payload
        elif tag == TAG_REPORT:
            self.reports[source] = payload if isinstance(payload, BackendReport) else BackendReport()
        elif tag == TAG_ERROR:
            self._lose(source, f"rank {source} failed: {payload}")
        elif tag in (TAG_FIRST, TAG_DONE, TAG_ROWS, TAG_FAIL) and source in self.replicas:
            self.replicas[source].deliver(tag, payload)

    def _check_heartbeats(self) -> None:
        now = time.monotonic()
        for rank, seen in list(self.last_seen.items()):
            if rank not in self.lost and now - seen > self.timeout_s:
                self._lose(rank, f"worker rank {rank} on {self.host_of(rank)} sent nothing for {self.timeout_s:.0f} s "
                                 "(died or hung)")

    def _lose(self, rank: int, reason: str) -> None:
        self.lost[rank] = reason
        replica = self.replicas.get(rank)
        if replica is not None:
            replica.fail_everything(reason)
        self.on_worker_lost(reason)


class _ReplySink:
    """Worker side: sends a local backend's output back to rank 0, one message per batch."""

    def __init__(self, send: Callable[[int, Any], None]) -> None:
        self.send = send

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        self.send(TAG_FIRST, [(int(request_id), int(token)) for request_id, token in firsts])

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        self.send(TAG_DONE, [(int(request_id), tokens) for request_id, tokens in completions])

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        self.send(TAG_ROWS, ([int(request_id) for request_id in request_ids], np.ascontiguousarray(rows)))

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        self.complete_batch(packed_completions(request_ids, buffer, offsets, lengths))

    def fail(self, request_id: int, error: BaseException) -> None:
        self.send(TAG_FAIL, (request_id, str(error)))


def _counter_snapshot() -> Any:
    from harness.network.counters import snapshot, to_json

    return to_json(snapshot())


def serve_worker(comm: Any, host: str, make_backend: Callable[[], Backend], timeout_s: float = 30.0) -> None:
    """A worker rank's main loop: load the backend, serve requests from rank 0 until STOP.

    The first message tells rank 0 this process's identity (host, pid); a heartbeat thread tells it this
    process is alive (also while the model loads); once rank 0 has spoken, silence from it for timeout_s
    means it is gone and the worker leaves.
    """
    lock = threading.Lock()
    stop = threading.Event()

    def send(tag: int, payload: Any) -> None:
        with lock:
            comm.send(payload, dest=0, tag=tag)

    send(TAG_HELLO, process_identity())
    _linger_on_sigterm()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            send(TAG_HEARTBEAT, None)

    threading.Thread(target=beat, name="mpi-heartbeat", daemon=True).start()
    reply = _ReplySink(send)
    try:
        backend = make_backend()
        info = backend.start(reply)
    except Exception as err:  # report to rank 0 instead of dying silently
        send(TAG_ERROR, f"{type(err).__name__}: {err} (on {host})")
        stop.set()
        return
    send(TAG_READY, (info, host))
    try:
        _worker_loop(comm, backend, reply, timeout_s)
    finally:
        stop.set()
        backend.stop()


def _linger_on_sigterm() -> None:
    """SIGTERM on a worker: leave TERM_LINGER_S later (exit 128 + signal) instead of at once (see TERM_LINGER_S)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def leave(signum: int) -> None:
        time.sleep(TERM_LINGER_S)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a closed pipe: leave anyway
                continue
        os._exit(128 + signum)

    def on_term(signum: int, _frame: object) -> None:
        threading.Thread(target=leave, args=(signum,), name="sigterm-linger", daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)


def _worker_loop(comm: Any, backend: Backend, sink: _ReplySink, timeout_s: float) -> None:
    status = MPI.Status()
    last_from_root: float | None = None
    while True:
        if not comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            if last_from_root is not None and time.monotonic() - last_from_root > timeout_s:
                raise BackendError(f"rank 0 sent nothing for {timeout_s:.0f} s; leaving")
            time.sleep(POLL_S * 2)
            continue
        tag = status.Get_tag()
        payload = comm.recv(source=0, tag=tag)
        last_from_root = time.monotonic()
        if tag == TAG_STOP:
            return
        if tag == TAG_CANCEL:
            backend.cancel_all()
        elif tag == TAG_SNAPSHOT:
            sink.send(TAG_SNAPSHOT, _counter_snapshot())
        elif tag == TAG_REPORT:
            sink.send(TAG_REPORT, backend.report())
        elif tag == TAG_WARM_UP:
            try:
                note = backend.warm_up(*payload)
            except Exception as err:  # rank 0 fails the run with this message instead of waiting
                sink.send(TAG_ERROR, f"warm-up failed: {type(err).__name__}: {err}")
                return
            sink.send(TAG_WARMED, note)
        elif tag == TAG_REQUESTS:
            backend.submit([GenerationRequest(*item) for item in payload])
