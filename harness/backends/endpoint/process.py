"""One endpoint client worker process: its own event loop and connection pool; runs the requests the LoadGen process
admitted and sends back, once per loop turn, the first tokens, completions and failures found in that turn.

Started by harness.backends.endpoint.workers as a fresh interpreter that calls `main([FD])` (FD: its end of a socket
pair, wrapped as a multiprocessing Connection). Imports neither LoadGen nor torch. Messages (pickled tuples):

- in: a WorkerConfig first, then ("run", [(request id, URL index in config.urls, prompt ids as int32 bytes, wants
  first token), ...]), ("cancel", None), ("stop", None);
- out: ("ready", connections opened, event loop name) or ("error", reason) once, then a results message per loop
  turn (messages.ResultBatch: first tokens, completions packed end to end, failures), ("beat", None) every
  `heartbeat_s` from the event loop (so the LoadGen process can tell a frozen worker from a quiet one), and
  ("stopped", None) last.

Messages travel as messages.send and messages.receive make them (one pickle each).

The event loop is uvloop's (a faster loop for the same asyncio code) or asyncio's, as backend.client_event_loop says
(auto: uvloop where installed).

It ignores SIGINT (the LoadGen process stops it) and leaves when its connection ends (the LoadGen process is gone).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import signal
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from harness.backends.endpoint.exchange import ExchangeFailed, Wire, exchange, new_session, open_connections
from harness.backends.endpoint.messages import ResultBatch, receive, send
from harness.backends.endpoint.protocol import completion_body
from harness.backends.sampling import SamplingSpec

__all__ = ["WorkerConfig", "main"]


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker needs: its index, the servers, the request format and the connections to open at start."""

    index: int
    urls: tuple[str, ...]
    model: str
    wire: Wire
    spec: SamplingSpec
    stream: bool
    limit_per_host: int
    warm_connections: int  # per URL, opened before the first request
    cpus: tuple[int, ...] | None = None
    heartbeat_s: float = 1.0
    event_loop: str = "auto"  # auto, uvloop or asyncio (backend.client_event_loop)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class _Worker:
    def __init__(self, conn: Connection, config: WorkerConfig) -> None:
        self.conn = conn
        self.config = config
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.results = ResultBatch()  # found in this loop turn
        self.flush_due = False
        self.out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.writer = threading.Thread(target=self._write, name="endpoint-worker-writer", daemon=True)
        self.session: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.done: asyncio.Future[bool] | None = None  # True: stop asked; False: the LoadGen process is gone

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        config = self.config
        self.session = new_session(config.wire, config.limit_per_host)
        self.writer.start()
        try:
            opened = 0
            for url in config.urls:
                try:
                    opened += await open_connections(self.session, url, config.warm_connections)
                except ExchangeFailed as err:
                    self.out.put(("error", f"{url}: {err}"))
                    return
            self.out.put(("ready", opened, loop_name()))
            self.loop.add_reader(self.conn.fileno(), self._readable)
            self._beat()
            asked = await self.done
            self.loop.remove_reader(self.conn.fileno())
            await self._cancel_all()
            self._flush()
            if asked:
                self.out.put(("stopped", None))
        finally:
            await self.session.close()
            self.out.put(None)
            self.writer.join(10)

    def _beat(self) -> None:
        """A sign of life from the event loop itself (a loop that is stuck sends none)."""
        self.out.put(("beat", None))
        assert self.loop is not None
        self.loop.call_later(self.config.heartbeat_s, self._beat)

    def _write(self) -> None:
        """The writer thread: the loop never blocks on a full pipe, so it always reads what the LoadGen process sends
        (no deadlock between two full pipes). Whatever queued up while it sent goes out as one message (results
        merged in order), so a busy worker makes fewer, larger writes without delaying any."""
        while True:
            batch = [self.out.get()]
            with contextlib.suppress(queue.Empty):
                while batch[-1] is not None:
                    batch.append(self.out.get_nowait())
            try:
                for message in _merged(batch):
                    if message is None:
                        return
                    send(self.conn, message.message() if isinstance(message, ResultBatch) else message)
            except OSError:  # the LoadGen process is gone
                return

    def _readable(self) -> None:
        try:
            urls = self.config.urls
            while self.conn.poll():
                kind, payload = receive(self.conn)
                if kind == "run":
                    for request_id, url_index, prompt, want_first in payload:
                        task = asyncio.ensure_future(self._serve(request_id, urls[url_index], prompt, want_first))
                        self.tasks[request_id] = task
                elif kind == "cancel":
                    for task in list(self.tasks.values()):
                        task.cancel()
                elif kind == "stop":
                    self._finish(True)
                    return
        except (EOFError, OSError):
            self._finish(False)

    def _finish(self, asked: bool) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(asked)

    async def _cancel_all(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, request_id: int, url: str, prompt: bytes, want_first: bool) -> None:
        config = self.config

        def first(got: Sequence[int]) -> None:
            self.results.first(request_id, int(got[0]))
            self._due()

        try:
            ids = array("i")
            ids.frombytes(prompt)
            body = completion_body(config.wire.flavour, config.model, ids, config.spec, config.stream)
            outcome = await exchange(self.session, config.wire, url, body, first if want_first else None)
        except ExchangeFailed as err:
            self.results.failure(request_id, f"{url}: {err}")
        except asyncio.CancelledError:
            self.results.failure(request_id, f"endpoint request {request_id}: cancelled")
        except Exception as err:  # one failed request must not hang LoadGen
            self.results.failure(request_id, f"endpoint request {request_id} failed: {_first_line(err)}")
        else:
            try:
                self.results.final(request_id, outcome.ids)
            except (TypeError, OverflowError):
                self.results.failure(request_id, f"{url}: the answer's token ids are not int32 integers")
        finally:
            self.tasks.pop(request_id, None)
        self._due()

    def _due(self) -> None:
        if not self.flush_due and self.loop is not None:
            self.flush_due = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One message per loop turn with everything that turn found."""
        self.flush_due = False
        if self.results:
            self.out.put(self.results)
            self.results = ResultBatch()


def _merged(batch: list[Any]) -> list[Any]:
    """Consecutive result batches as one (the first one extended); every other message (and the None that ends the
    writer) as is."""
    out: list[Any] = []
    for message in batch:
        if isinstance(message, ResultBatch) and out and isinstance(out[-1], ResultBatch):
            out[-1].merge(message)
        else:
            out.append(message)
    return out


def loop_name() -> str:
    """The running event loop's implementation: "uvloop" or "asyncio"."""
    return "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":  # checked in the LoadGen process before the workers start
            raise
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


def main(argv: Sequence[str]) -> int:
    """Serve as worker process over the connection whose file descriptor is argv[0]."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the LoadGen process stops its workers itself
    conn = Connection(int(argv[0]))
    try:
        config: WorkerConfig = receive(conn)
    except (EOFError, OSError):
        return 0
    if config.cpus and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {config.cpus[config.index % len(config.cpus)]})
    with asyncio.Runner(loop_factory=_loop_factory(config.event_loop)) as runner:
        runner.run(_Worker(conn, config).run())
    return 0
