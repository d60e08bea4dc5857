"""The async engine core: one loop thread, admission, the task table, per-turn coalescing, cancel-all, a bounded stop
and the dead-engine rule, shared by every engine whose API is async (TensorRT-LLM, vLLM, HTTP endpoints).

An engine (an `AsyncEngine`) writes only what is specific to it: `prepare` (checks and imports in the caller's
thread, before the loop starts), `open` (load and warm up, on the loop),
`generate` (resolve one request: report its first ids through `first` as soon as they exist, return the final
ids or raise), `close` (on the loop: release what lives there) and `shutdown` (blocking release of the engine
itself), plus `admit`/`release` when it limits requests in flight (the endpoint's least-in-flight URL choice).
`AsyncEngineBackend` wraps it into the Backend protocol:

- requests wait in one FIFO queue and start, in submission order, whenever the engine admits one;
- first tokens and completions found during one loop turn go to the sink together at the end of that turn, one
  call each, so LoadGen receives one call per batch of completions, never one per request;
- a request's failure names it; an `EngineDead` failure marks the engine dead, and every request queued or
  submitted from then on fails at once with that cause (nothing is retried);
- `cancel_all` fails the queued requests, cancels those in flight (the engine aborts them) and every request
  submitted after it;
- `stop` is bounded: if the engine's close and shutdown do not finish within `stop_timeout_s`, they are abandoned
  (left on daemon threads), every open request fails, and `stop` raises `EngineStopHung` (exit 4), whose
  `leaves_native_thread` makes the process leave without interpreter teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.loop import start_loop_thread, stop_loop_thread
from harness.backends.streaming import StreamRelay
from harness.errors import BackendError
from harness.types import GenerationRequest

__all__ = ["AsyncEngine", "AsyncEngineBackend", "EngineBase", "EngineDead", "EngineStopHung", "RequestFailed",
           "first_line"]

FirstIds = Callable[[Sequence[int]], None]


def first_line(err: BaseException) -> str:
    """The first line of an exception's text, or its type's name when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class RequestFailed(Exception):
    """One request could not be served; the message is the whole one-line reason (it names the URL where one)."""


class EngineDead(Exception):
    """The engine cannot serve anything any more (vLLM's EngineDeadError, a crashed executor)."""


class EngineStopHung(BackendError):
    """The engine did not shut down within its bound; its threads are abandoned, so the process must leave without
    interpreter teardown once the run is marked failed."""

    leaves_native_thread = True


class AsyncEngine(Protocol):
    """What one async engine implements; everything else is the core's (see the module docstring)."""

    label: str  # for messages and the loop thread's name: "vLLM", "TensorRT-LLM", "endpoint"
    stop_timeout_s: float  # how long stop() waits for close() and shutdown() together

    def prepare(self) -> None:
        """In the caller's thread, before the loop starts: imports, checks, whatever must not run on the loop."""

    async def open(self) -> BackendInfo:
        """Load the engine and warm it up (on the loop); a failure raises HarnessError."""

    def admit(self) -> Any:
        """A slot for one more request in flight (any value but None), or None when the engine is at capacity."""

    def release(self, slot: Any) -> None:
        """A request admitted with `slot` ended (completed, failed or cancelled)."""

    async def generate(self, request: GenerationRequest, slot: Any, first: FirstIds | None) -> Sequence[int]:
        """Resolve one request: call `first` (when given) with the first generated ids as soon as they exist, return
        every generated id; raise RequestFailed or EngineDead. Cancellation (CancelledError) must abort the request
        in the engine."""

    async def close(self) -> None:
        """On the loop, after every request ended: release what lives on the loop (sessions, engine tasks)."""

    def shutdown(self) -> None:
        """Off the loop, after close(): release the engine itself (may block; the core bounds it)."""

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Backend.warm_up: checks or preparation before LoadGen's clock starts."""

    def report(self) -> BackendReport:
        """Backend.report."""


class EngineBase:
    """The defaults most engines share: options and setup kept, the stop bound from `options.stop_timeout_s`, every
    request admitted at once (the engine's own scheduler queues), nothing to prepare, close or shut down."""

    label = "engine"

    def __init__(self, options: Any, setup: BackendSetup) -> None:
        self.options = options
        self.setup = setup
        self.stop_timeout_s = float(options.stop_timeout_s)

    def prepare(self) -> None:
        """Nothing to check before the loop starts."""

    def admit(self) -> Any:
        """No limit of our own."""
        return True

    def release(self, slot: Any) -> None:
        """Nothing counted."""

    async def close(self) -> None:
        """Nothing lives on the loop besides the requests, which the core has ended."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Nothing to prepare before LoadGen's clock starts."""
        return None


class AsyncEngineBackend:
    """The Backend protocol for an AsyncEngine (see the module docstring). Thread-safe like every backend: submit,
    cancel_all and stop are called from the SUT's threads, everything else runs on the loop thread."""

    def __init__(self, engine: AsyncEngine, thread_name: str, open_timeout_s: float | None = None) -> None:
        self.engine = engine
        self._thread_name = thread_name
        self._open_timeout_s = open_timeout_s
        self._relay: StreamRelay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pending: deque[GenerationRequest] = deque()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._firsts: list[tuple[int, Sequence[int]]] = []  # found in this loop turn, not yet handed over
        self._finals: list[tuple[int, Sequence[int]]] = []
        self._flush_due = False
        self._dead: str | None = None
        self._cancelled = threading.Event()
        self._stopped = False
        self.stop_problem: str | None = None  # what a stop that hit its bound left behind

    # ---- Backend protocol (called from the SUT's threads) ----

    def start(self, sink: TokenSink) -> BackendInfo:
        """Prepare the engine, start the loop thread and open the engine on it; a failure stops everything again
        and is raised."""
        self.engine.prepare()
        self._relay = StreamRelay(sink)
        self._loop, self._thread = start_loop_thread(self._thread_name)
        future = asyncio.run_coroutine_threadsafe(self.engine.open(), self._loop)
        try:
            return future.result(timeout=self._open_timeout_s)
        except BaseException:
            future.cancel()
            with contextlib.suppress(Exception):
                self.stop()
            raise

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """The engine's own preparation."""
        return self.engine.warm_up(longest_prompt, batch_sizes)

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests in order; returns at once."""
        if self._loop is None or self._relay is None or self._stopped:
            raise BackendError(f"the {self.engine.label} backend is not running", hint="call start() first")
        batch = list(requests)
        for request in batch:
            self._relay.open(request.request_id, request.want_first_token)
        self._loop.call_soon_threadsafe(self._enqueue, batch)

    def cancel_all(self) -> None:
        """Fail the queued requests, cancel those in flight and refuse later ones, each with 'cancelled'."""
        self._cancelled.set()
        if self._loop is not None and not self._stopped:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._cancel_everything)

    def stop(self) -> None:
        """End every request, close and shut the engine down within its bound, end the loop thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        bound = self.engine.stop_timeout_s
        stopper = threading.Thread(target=self._stop_sequence, name=f"{self._thread_name}-stop", daemon=True)
        stopper.start()
        stopper.join(bound)
        if self._relay is not None:
            self._relay.fail_all(BackendError(f"the {self.engine.label} backend stopped before this request "
                                              "finished"))
        if stopper.is_alive():
            self.stop_problem = (f"the {self.engine.label} engine did not shut down within {bound:g} s "
                                 "(backend.stop_timeout_s); its shutdown was abandoned")
            raise EngineStopHung(self.stop_problem, hint="see the engine's log for what it waited on; the results "
                                                         "written before the stop are intact")

    def report(self) -> BackendReport:
        """The engine's report."""
        return self.engine.report()

    # ---- stop, off the loop ----

    def _stop_sequence(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result()
            stop_loop_thread(loop, thread)
        with contextlib.suppress(Exception):
            self.engine.shutdown()

    async def _close(self) -> None:
        """Fail what waits, cancel what runs and wait for it, hand over what is queued, then the engine's close."""
        self._drop_pending(BackendError("cancelled (backend stopped)"))
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()
        await self.engine.close()

    # ---- on the loop thread ----

    def _enqueue(self, requests: list[GenerationRequest]) -> None:
        self._pending.extend(requests)
        self._pump()

    def _pump(self) -> None:
        assert self._loop is not None
        while self._pending and not self._stopped:
            if self._cancelled.is_set():
                self._drop_pending(BackendError("cancelled"))
                return
            if self._dead is not None:
                self._drop_pending(BackendError(self._dead))
                return
            slot = self.engine.admit()
            if slot is None:
                return
            request = self._pending.popleft()
            task = self._loop.create_task(self._serve(request, slot))
            self._tasks[request.request_id] = task

    async def _serve(self, request: GenerationRequest, slot: Any) -> None:
        relay, request_id = self._relay, request.request_id
        assert relay is not None
        first = (lambda ids: self._hand_over(self._firsts, request_id, ids)) if request.want_first_token else None
        try:
            ids = await self.engine.generate(request, slot, first)
        except asyncio.CancelledError:
            self._fail(request_id, BackendError(f"{self.engine.label} request {request_id}: cancelled"))
        except RequestFailed as err:
            self._fail(request_id, BackendError(str(err)))
        except EngineDead as err:
            self._dead = f"the {self.engine.label} engine is dead: {first_line(err)}"
            self._fail(request_id, BackendError(f"{self.engine.label} request {request_id} failed: {first_line(err)}"))
            self._drop_pending(BackendError(self._dead))
        except Exception as err:  # one failed request must not hang LoadGen
            self._fail(request_id, BackendError(f"{self.engine.label} request {request_id} failed: "
                                                f"{first_line(err)}"))
        else:
            self._hand_over(self._finals, request_id, ids)
        finally:
            self._tasks.pop(request_id, None)
            self.engine.release(slot)
            self._pump()

    def _fail(self, request_id: int, error: BackendError) -> None:
        """What is queued (this request's first token, maybe) goes to the sink before the failure."""
        assert self._relay is not None
        self._flush()
        self._relay.fail(request_id, error)

    def _drop_pending(self, error: BackendError) -> None:
        assert self._relay is not None
        while self._pending:
            self._relay.fail(self._pending.popleft().request_id, error)

    def _cancel_everything(self) -> None:
        self._drop_pending(BackendError("cancelled"))
        for task in list(self._tasks.values()):
            task.cancel()

    def _hand_over(self, batch: list[tuple[int, Sequence[int]]], request_id: int, ids: Sequence[int]) -> None:
        """Queue a first token or a completion for the end of this loop turn."""
        batch.append((request_id, ids))
        if not self._flush_due:
            self._flush_due = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One sink call for the first tokens, then one for the completions, of this loop turn (a request that
        completes before its first token was sent has it sent in the first call)."""
        self._flush_due = False
        relay = self._relay
        firsts, self._firsts = self._firsts, []
        finals, self._finals = self._finals, []
        if relay is None:
            return
        firsts += [(request_id, ids[:1]) for request_id, ids in finals]
        if firsts:
            relay.extend_each(firsts)
        if finals:
            relay.finish_each(finals)
