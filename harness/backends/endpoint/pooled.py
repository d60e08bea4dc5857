"""PooledEndpointBackend: the endpoint client with HTTP and SSE in worker processes (backend.client_workers >= 1);
the LoadGen process keeps the least-in-flight admission over the URLs and hands admitted requests to the workers.

- start: readiness, model check, server facts and one warm-up request per URL exactly as the in-process client
  (EndpointEngine.open on a short-lived loop), then the workers start and open their connections;
- submit: requests wait in one FIFO queue; each admitted one (the URL with the fewest in flight below its
  `concurrency`) goes to the worker with the fewest in flight, all those of one call in one message per worker;
- a request travels as its ticket, its URL's index and its prompt as int32 bytes (made once per sample and kept);
- a reader thread turns the workers' messages (one per worker loop turn) into sink calls: the first tokens, then the
  completions, of everything one wake-up read, one call each (`complete_packed`: the packed arrays the workers sent,
  read with numpy, no Python object per token); then failures, one by one (named as in process). Only requests
  still open reach the sink, each once: the workers report a first token at most once and an end exactly once,
  and the sink itself (the SUT) keeps first tokens once-only and sends a missing one before its completion;
- a worker whose connection ends while the run goes on (it died or was killed) fails every request it held with its
  name and exit status, and, like a dead engine, every request queued or submitted afterwards; a worker that sends
  nothing for workers.SILENT_S s (its event loop beats every second) is frozen: it is killed, which fails the run
  the same way, naming it;
- cancel_all and stop as the async engine core's; stop waits `stop_timeout_s` for the workers, then kills them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import itertools
import math
import selectors
import sys
import threading
import time
from array import array
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.endpoint.client import EndpointEngine
from harness.backends.endpoint.messages import FrameReader
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.process import WorkerConfig
from harness.backends.endpoint.readiness import Endpoint
from harness.backends.endpoint.workers import (
    WorkerHandle,
    close_connections,
    frozen_workers,
    launch_workers,
    stop_workers,
)
from harness.errors import BackendError, EnvironmentProblem
from harness.types import GenerationRequest

__all__ = ["PooledEndpointBackend"]

_Failure = tuple[int, BackendError]


class PooledEndpointBackend:
    """The Backend protocol over worker processes (see the module docstring). Thread-safe: submit, cancel_all and
    stop come from the SUT's threads, results from the reader thread."""

    def __init__(self, options: EndpointOptions, setup: BackendSetup) -> None:
        self.engine = EndpointEngine(options, setup)  # config checks, URLs, readiness and report, as in process
        self.options = options
        self.count = options.worker_count(setup.replicas)
        if options.client_event_loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise EnvironmentProblem("backend.client_event_loop is uvloop, but uvloop is not installed in "
                                     f"{sys.executable}", hint="pip install uvloop, or set backend.client_event_loop "
                                                               "to auto or asyncio")
        self.workers: list[WorkerHandle] = []
        self.stop_problem: str | None = None
        self._sink: TokenSink | None = None
        self._url_index = {endpoint.url: index for index, endpoint in enumerate(self.engine.endpoints)}
        self._prompts: dict[int, tuple[Sequence[int], bytes]] = {}  # sample index: (input ids, as int32 bytes)
        self._lock = threading.Lock()
        self._pending: deque[GenerationRequest] = deque()
        self._flights: dict[int, tuple[Endpoint, WorkerHandle]] = {}
        self._load: dict[int, int] = {}  # in flight per worker index
        self._dead: str | None = None
        self._cancelled = False
        self._stopping = False
        self._reader: threading.Thread | None = None

    @property
    def endpoints(self) -> list[Endpoint]:
        """The servers, with their load counters."""
        return self.engine.endpoints

    @property
    def model(self) -> str:
        """The served model's name (known once started)."""
        return self.engine.model

    # ---- Backend protocol ----

    def start(self, sink: TokenSink) -> BackendInfo:
        """Check every URL as the in-process client does, then start the workers; a failure stops everything."""
        engine, options = self.engine, self.options
        engine.prepare()
        bound = options.ready_timeout_s + options.read_timeout_s + 30

        async def probe() -> BackendInfo:
            try:
                return await asyncio.wait_for(engine.open(), bound)
            finally:
                await engine.close()

        info = asyncio.run(probe())
        assert engine.wire is not None
        per_worker = math.ceil(options.concurrency / self.count)
        configs = [WorkerConfig(index, tuple(options.urls), engine.model, engine.wire, engine.spec, engine.stream,
                                options.concurrency + 4, min(per_worker, options.concurrency),
                                options.client_worker_cpus, event_loop=options.client_event_loop)
                   for index in range(self.count)]
        self.workers = launch_workers(configs, options.connect_timeout_s)
        self._load = {handle.index: 0 for handle in self.workers}
        self._sink = sink
        self._reader = threading.Thread(target=self._read, name="endpoint-workers-reader", daemon=True)
        self._reader.start()
        loops = sorted({handle.loop for handle in self.workers if handle.loop})
        note = (f"endpoint client: HTTP and SSE in {self.count} worker process{'es' if self.count > 1 else ''}"
                + (f" ({', '.join(loops)} event loop)" if loops else ""))
        return dataclasses.replace(info, notes=(*info.notes, note))

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Connections are opened at start; nothing else to prepare."""
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests in order and hand out what can be admitted; returns at once."""
        if self._sink is None or self._stopping:
            raise BackendError("the endpoint backend is not running", hint="call start() first")
        with self._lock:
            self._pending.extend(requests)
            failures = self._pump()
        self._fail_each(failures)

    def cancel_all(self) -> None:
        """Fail the queued requests, cancel those in flight (the workers drop their HTTP requests) and later ones."""
        with self._lock:
            self._cancelled = True
            failures = self._drop_pending("cancelled")
            for handle in self.workers:
                handle.send(("cancel", None))
        self._fail_each(failures)

    def stop(self) -> None:
        """End every request, stop the workers within stop_timeout_s (then kill them). Idempotent."""
        if self._stopping:
            return
        with self._lock:
            self._stopping = True
            failures = self._drop_pending("cancelled (backend stopped)")
        self._fail_each(failures)
        killed = stop_workers(self.workers, self.options.stop_timeout_s)
        if self._reader is not None:
            self._reader.join(10)
        close_connections(self.workers)
        with self._lock:
            unanswered = list(self._flights)
            for endpoint, _ in self._flights.values():
                endpoint.in_flight -= 1
            self._flights.clear()
        self._fail_each([(request_id, BackendError("the endpoint backend stopped before this request finished"))
                         for request_id in unanswered])
        if killed:
            self.stop_problem = (f"{', '.join(h.name for h in killed)} did not stop within "
                                 f"{self.options.stop_timeout_s:g} s (backend.stop_timeout_s); killed")
            raise BackendError(self.stop_problem, hint="the results written before the stop are intact")

    def report(self) -> BackendReport:
        """The in-process client's report (the counters are kept here, per URL)."""
        return self.engine.report()

    # ---- admission (under the lock) ----

    def _pump(self) -> list[_Failure]:
        if self._stopping:  # stop fails what waits; nothing is sent to a worker being stopped
            return []
        if self._cancelled:
            return self._drop_pending("cancelled")
        if self._dead is not None:
            return self._drop_pending(self._dead)
        batches: dict[int, list[tuple[int, int, bytes, bool]]] = {}
        refused: list[_Failure] = []
        live = [handle.index for handle in self.workers if not handle.gone]
        load, prompts, url_index = self._load, self._prompts, self._url_index
        while self._pending and live:
            request = self._pending[0]
            known = prompts.get(request.sample_index)
            if known is None or known[0] is not request.input_ids:  # the same ids object: the bytes made before
                try:
                    known = prompts[request.sample_index] = (request.input_ids,
                                                             array("i", request.input_ids).tobytes())
                except (OverflowError, TypeError):
                    self._pending.popleft()
                    refused.append((request.request_id, BackendError(
                        f"request {request.request_id} (QSL sample {request.sample_index}): the prompt's token ids "
                        "are not all int32 integers")))
                    continue
            endpoint = self.engine.admit()
            if endpoint is None:
                break
            self._pending.popleft()
            index = min(live, key=load.__getitem__)  # the least-loaded worker (a C-level key: this runs per request)
            load[index] += 1
            endpoint.requests += 1
            handle = self.workers[index]
            self._flights[request.request_id] = (endpoint, handle)
            batches.setdefault(index, []).append((request.request_id, url_index[endpoint.url], known[1],
                                                  request.want_first_token))
        for index, batch in batches.items():
            self.workers[index].send(("run", batch))  # a worker gone meanwhile: the reader fails what it held
        return refused

    def _drop_pending(self, reason: str) -> list[_Failure]:
        failures = [(request.request_id, BackendError(reason)) for request in self._pending]
        self._pending.clear()
        return failures

    def _end(self, request_id: int, tokens: int | None) -> bool:
        """A request ended (tokens None: failed); False when it was not in flight any more."""
        flight = self._flights.pop(request_id, None)
        if flight is None:
            return False
        endpoint, handle = flight
        self.engine.release(endpoint)
        self._load[handle.index] -= 1
        if tokens is None:
            endpoint.errors += 1
        else:
            endpoint.tokens += tokens
        return True

    def _fail_each(self, failures: list[_Failure]) -> None:
        sink = self._sink
        if sink is not None:
            for request_id, error in failures:
                sink.fail(request_id, error)

    # ---- the reader thread ----

    def _read(self) -> None:
        selector = selectors.DefaultSelector()
        readers = []
        for handle in self.workers:
            reader = FrameReader(handle.conn)
            readers.append(reader)
            selector.register(reader, selectors.EVENT_READ, handle)
        checked = time.monotonic()
        try:
            while selector.get_map():
                results: list[tuple[Any, ...]] = []
                failures: list[_Failure] = []
                ready = selector.select(timeout=1.0)
                now = time.monotonic()
                if now - checked > 0.5:  # a connection closed here (not by the worker) is never readable: look
                    checked = now
                    ready += [(key, 0) for key in selector.get_map().values() if key.data.conn.closed]
                for key, _ in ready:
                    handle = key.data
                    handle.heard = now
                    messages = None if handle.conn.closed else key.fileobj.read()  # type: ignore[union-attr]
                    if messages is None:
                        if handle.gone:
                            continue
                        selector.unregister(key.fileobj)
                        handle.gone = True
                        failures += self._worker_gone(handle)
                        continue
                    results += [message for message in messages if message[0] == "results"]
                if results:
                    self._deliver(results)
                self._fail_each(failures)
                if not self._stopping:  # during stop, stop_workers bounds the wait (stop_timeout_s), names the killed
                    frozen_workers(self.workers, time.monotonic())  # killed: their connections end, read as gone next
        finally:
            selector.close()
            for reader in readers:
                reader.close()

    def _worker_gone(self, handle: WorkerHandle) -> list[_Failure]:
        """A worker's connection ended: fine during stop; otherwise it died, which ends the run."""
        with self._lock:
            if self._stopping:
                return []
        problem = (f"{handle.name} {handle.frozen}" if handle.frozen is not None
                   else f"{handle.name} died ({handle.exit_text()})")
        with self._lock:
            self._dead = f"the endpoint client is dead: {problem}"
            held = [(request_id, endpoint.url) for request_id, (endpoint, owner) in self._flights.items()
                    if owner is handle]
            failures = [(request_id, BackendError(f"{url}: request {request_id} lost: {problem}"))
                        for request_id, url in held]
            for request_id, _ in held:
                self._end(request_id, None)
            failures += self._drop_pending(self._dead)
        return failures

    def _deliver(self, results: list[tuple[Any, ...]]) -> None:
        """The results messages of one wake-up: the ends are counted (and more requests admitted), then the first
        tokens, the completions and the failures of requests still open go to the sink."""
        sink = self._sink
        assert sink is not None
        firsts_seen = list(zip(_column(results, 1, "q"), _column(results, 2, "i"), strict=True))
        finals = _column(results, 3, "q")
        lengths = _column(results, 4, "q")
        failed = [(request_id, text) for message in results for request_id, text in message[6]]
        with self._lock:
            flights = self._flights
            firsts = [(request_id, token) for request_id, token in firsts_seen if request_id in flights]
            ended = [self._end(request_id, count) for request_id, count in zip(finals, lengths, strict=True)]
            failures = [(request_id, BackendError(text)) for request_id, text in failed if self._end(request_id, None)]
            more = self._pump() if not self._stopping else []
        failures += more
        if firsts:
            sink.first_tokens(firsts)
        if finals:
            tokens = np.frombuffer(results[0][5] if len(results) == 1 else b"".join(m[5] for m in results),
                                   dtype=np.int32)
            offsets = list(itertools.accumulate(lengths[:-1], initial=0))
            if not all(ended):
                keep = [k for k, kept in enumerate(ended) if kept]
                finals, offsets, lengths = [finals[k] for k in keep], [offsets[k] for k in keep], \
                    [lengths[k] for k in keep]
            if finals:
                sink.complete_packed(finals, tokens, np.array(offsets, dtype=np.int64),
                                     np.array(lengths, dtype=np.int64))
        self._fail_each(failures)


def _column(results: list[tuple[Any, ...]], field: int, typecode: str) -> list[int]:
    """One packed field of every results message, end to end, as Python ints."""
    values = array(typecode)
    for message in results:
        values.frombytes(message[field])
    return values.tolist()
