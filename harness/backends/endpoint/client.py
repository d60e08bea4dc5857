"""EndpointBackend: one aiohttp session on an asyncio loop thread; least-in-flight over URLs; SSE first tokens.

Requests wait in one queue and go, in submission order, to the URL with the fewest requests in flight that is
below its `concurrency`. A request that cannot be served (refused, reset, HTTP error, stalled longer than
`read_timeout_s`, malformed answer) fails through the sink with a BackendError naming the URL; nothing is
retried, so a run never hides a server problem.

Results go to the sink in batches: first tokens and completions found during one event-loop iteration (one
round of network reads) are handed over together at its end, one sink call each, so that LoadGen receives
one call per batch rather than one per request. A first token is forwarded from the first SSE event that
carries ids; later events of the stream are only parsed, never forwarded one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.protocol import (
    COMPLETIONS,
    Delta,
    ProtocolError,
    completion_body,
    dumps,
    int32_ids,
    loads,
    parse_choice,
    sse_payloads,
    stream_events,
)
from harness.backends.endpoint.readiness import Endpoint, ServerFacts, wait_ready
from harness.backends.loop import start_loop_thread, stop_loop_thread
from harness.backends.sampling import SamplingSpec
from harness.backends.streaming import StreamRelay
from harness.errors import BackendError, ConfigError
from harness.types import GenerationRequest

__all__ = ["EndpointBackend"]

_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class _Failed(Exception):
    """One request's failure; the message is prefixed with the URL by the caller."""


@dataclass
class _Outcome:
    ids: Sequence[int]  # an int32 array for the token-id flavours' streams
    finish_reason: str | None


class EndpointBackend:
    """The Backend protocol over OpenAI-compatible servers (see the module docstring)."""

    def __init__(self, options: EndpointOptions, setup: BackendSetup) -> None:
        self.options = options
        self.spec: SamplingSpec = setup.sampling
        self.stream = options.streams(setup.streams_first_token)
        if setup.streams_first_token and not self.stream:
            raise ConfigError("backend.stream is false, but this scenario needs first tokens as they arrive",
                              hint="use backend.stream: auto (or true) for Server/Interactive")
        if options.flavour == "generic" and not options.retokenize:
            raise ConfigError("backend.flavour generic returns text only, so exact output token ids are unknown",
                              hint="choose the server's flavour (vllm, trtllm-serve, sglang), or set "
                                   "backend.retokenize: true (recorded as a deviation)")
        completion_body(options.flavour, "", [], self.spec, self.stream)  # refuses beam search before start
        self._setup = setup
        self.endpoints = [Endpoint(url, options.concurrency, facts=ServerFacts(options.flavour))
                          for url in options.urls]
        self.model = options.model or ""
        self._tokenizer: Any = None
        self._relay: StreamRelay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pending: deque[GenerationRequest] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._firsts: list[tuple[int, Sequence[int]]] = []  # found in this loop iteration, not yet handed over
        self._finals: list[tuple[int, Sequence[int]]] = []
        self._flush_due = False
        self._stopped = False

    # ---- Backend protocol (called from the SUT's threads) ----

    def start(self, sink: TokenSink) -> BackendInfo:
        """Start the loop thread, wait until every URL serves the model and answered one warm-up request."""
        self._relay = StreamRelay(sink)
        if self.options.retokenize:
            if self._setup.tokenizer is None:
                raise ConfigError("backend.retokenize needs the run's tokenizer, which this setup does not carry",
                                  hint="set model.tokenizer (or model.path) to the served model's tokenizer")
            self._tokenizer = self._setup.tokenizer
        loop, self._thread = start_loop_thread("endpoint-backend")
        self._loop = loop
        future = asyncio.run_coroutine_threadsafe(self._open(), loop)
        try:
            future.result(timeout=self.options.ready_timeout_s + self.options.read_timeout_s + 30)
        except BaseException:
            self.stop()
            raise
        return self._info()

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Servers were warmed up (one request per URL) when start returned; nothing more to prepare."""
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests in order; returns at once."""
        if self._loop is None or self._relay is None or self._stopped:
            raise BackendError("the endpoint backend is not running", hint="call start() first")
        batch = list(requests)
        for request in batch:
            self._relay.open(request.request_id, request.want_first_token)
        self._loop.call_soon_threadsafe(self._enqueue, batch)

    def cancel_all(self) -> None:
        """Fail the queued requests with 'cancelled'; those in flight finish or fail."""
        if self._loop is not None and not self._stopped:
            self._loop.call_soon_threadsafe(self._drop_pending)

    def stop(self) -> None:
        """Cancel what is in flight, close the HTTP session and the loop thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=30)
        stop_loop_thread(loop, thread)
        if self._relay is not None:
            self._relay.fail_all(BackendError("the endpoint backend stopped before this request finished"))

    def report(self) -> BackendReport:
        """Per-URL load (requests, tokens, errors) and server versions; flavour, model and streaming as a section;
        `engines`: per URL what the server says it runs (engine, version, served model, prefix caching, settings)."""
        return BackendReport(tuple(endpoint.load() for endpoint in self.endpoints),
                             {"endpoint": {"flavour": self.options.flavour, "model": self.model,
                                           "stream": self.stream, "retokenize": self.options.retokenize},
                              "engines": [endpoint.facts.record(endpoint.url) for endpoint in self.endpoints]})

    # ---- on the loop thread ----

    async def _open(self) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.options.connect_timeout_s,
                                        sock_read=self.options.read_timeout_s)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.options.concurrency + 4)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_HEADERS)
        self.model = await wait_ready(self._session, self.endpoints, self.options.model,
                                      self.options.ready_timeout_s, self.options.connect_timeout_s,
                                      self.options.flavour, self.options.server_prefix_caching)
        await asyncio.gather(*(self._warm(endpoint) for endpoint in self.endpoints))

    async def _warm(self, endpoint: Endpoint) -> None:
        prompt = [self.spec.eos_token_id] * 4
        spec = SamplingSpec(**{**self.spec.__dict__, "max_new_tokens": 2, "min_new_tokens": 0})
        body = completion_body(self.options.flavour, self.model, prompt, spec, self.stream)
        try:
            outcome = await self._exchange(endpoint, body, None)
        except _Failed as err:
            raise BackendError(f"{endpoint.url}: warm-up request failed: {err}",
                               hint=f"check the server is {self.options.flavour} and serves {self.model}") from None
        if not outcome.ids and self.options.flavour != "generic":
            raise BackendError(f"{endpoint.url}: the warm-up request returned no token ids",
                               hint=f"check backend.flavour ({self.options.flavour}) matches the server")

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._flush()
        if self._session is not None:
            await self._session.close()

    def _enqueue(self, requests: list[GenerationRequest]) -> None:
        self._pending.extend(requests)
        self._pump()

    def _drop_pending(self) -> None:
        assert self._relay is not None
        while self._pending:
            self._relay.fail(self._pending.popleft().request_id, BackendError("cancelled"))

    def _pump(self) -> None:
        assert self._loop is not None
        while self._pending and not self._stopped:
            free = [endpoint for endpoint in self.endpoints if endpoint.in_flight < endpoint.limit]
            if not free:
                return
            endpoint = min(free, key=lambda e: e.in_flight)
            request = self._pending.popleft()
            endpoint.in_flight += 1
            task = self._loop.create_task(self._serve(endpoint, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, endpoint: Endpoint, request: GenerationRequest) -> None:
        relay = self._relay
        assert relay is not None
        endpoint.requests += 1
        body = completion_body(self.options.flavour, self.model, request.input_ids, self.spec, self.stream)
        request_id = request.request_id
        on_first = (lambda ids: self._hand_over(self._firsts, request_id, ids)) if request.want_first_token \
            else None
        try:
            outcome = await self._exchange(endpoint, body, on_first)
        except _Failed as err:
            endpoint.errors += 1
            self._flush()  # what is queued (this request's first token, maybe) goes before the failure
            relay.fail(request_id, BackendError(f"{endpoint.url}: {err}"))
        except asyncio.CancelledError:
            endpoint.errors += 1
            self._flush()
            relay.fail(request_id, BackendError(f"{endpoint.url}: cancelled (backend stopped)"))
        else:
            ids = outcome.ids
            endpoint.tokens += len(ids)
            self._hand_over(self._finals, request_id, ids)
        finally:
            endpoint.in_flight -= 1
            self._pump()

    def _hand_over(self, batch: list[tuple[int, Sequence[int]]], request_id: int, ids: Sequence[int]) -> None:
        """Queue a first token or a completion for the end of this loop iteration (see the module docstring)."""
        batch.append((request_id, ids))
        if not self._flush_due:
            self._flush_due = True
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One sink call for the first tokens, then one for the completions, of this loop iteration (a request
        that completes without its first token sent yet has it sent in the first call)."""
        self._flush_due = False
        relay = self._relay
        firsts, self._firsts = self._firsts, []
        finals, self._finals = self._finals, []
        if relay is None:
            return
        firsts += [(request_id, ids[:1]) for request_id, ids in finals]  # first tokens not yet sent, same call
        if firsts:
            relay.extend_each(firsts)
        if finals:
            relay.finish_each(finals)

    async def _exchange(self, endpoint: Endpoint, body: dict[str, Any],
                        on_first: Callable[[Sequence[int]], None] | None) -> _Outcome:
        """POST one completion; the generated ids, or _Failed with a one-line reason."""
        assert self._session is not None
        started = time.monotonic()
        try:
            async with self._session.post(endpoint.url + COMPLETIONS, data=dumps(body)) as response:
                if response.status != 200:
                    detail = (await response.read())[:300].decode(errors="replace").replace("\n", " ")
                    raise _Failed(f"HTTP {response.status} from {COMPLETIONS}: {detail}")
                if body["stream"]:
                    return await self._read_stream(response, on_first)
                return self._outcome([parse_choice(self.options.flavour, loads(await response.read()))])
        except aiohttp.ConnectionTimeoutError:
            raise _Failed(f"connect timed out after {self.options.connect_timeout_s:g} s") from None
        except (aiohttp.SocketTimeoutError, TimeoutError):
            raise _Failed(f"stalled: no bytes for {self.options.read_timeout_s:g} s "
                          f"({time.monotonic() - started:.1f} s into the request)") from None
        except aiohttp.ClientConnectorError as err:
            raise _Failed(f"cannot connect ({err.os_error.strerror or err.os_error})") from None
        except aiohttp.ServerDisconnectedError:
            raise _Failed("the server closed the connection before the answer was complete") from None
        except aiohttp.ClientPayloadError as err:
            raise _Failed(f"broken response body ({err})") from None
        except aiohttp.ClientError as err:
            raise _Failed(f"{type(err).__name__}: {err}") from None
        except ProtocolError as err:
            raise _Failed(str(err)) from None
        except ValueError as err:  # JSON decoding
            raise _Failed(f"answer is not valid JSON ({str(err)[:80]})") from None

    async def _read_stream(self, response: aiohttp.ClientResponse,
                           on_first: Callable[[Sequence[int]], None] | None) -> _Outcome:
        """Read an SSE stream to its end; `on_first` gets the first ids as soon as the event carrying them is read."""
        flavour = self.options.flavour
        ids: list[int] = []
        texts: list[str] = []
        finish: str | None = None
        done = False
        pending = b""
        # Whatever bytes have arrived are parsed together: one await per network read, not one per SSE line.
        async for chunk in response.content.iter_any():
            if pending:
                chunk = pending + chunk
            cut = chunk.rfind(b"\n") + 1
            pending = chunk[cut:]
            if not cut:
                continue
            payloads, done = sse_payloads(chunk[:cut])
            finish = stream_events(flavour, payloads, ids, texts) or finish
            if on_first is not None:
                first = self._first_ids(ids, texts)
                if first:
                    on_first(first)
                    on_first = None
            if done:
                break
        if not done and pending.strip():
            raise ProtocolError(f"the SSE stream ended inside an event: {pending[:80]!r}")
        if not done and not finish:
            raise ProtocolError("the SSE stream ended before its last event (no finish_reason, no [DONE])")
        if flavour != "generic":
            return _Outcome(int32_ids(ids), finish)
        return self._outcome([Delta(None, "".join(texts), finish)])

    def _first_ids(self, ids: list[int], texts: list[str]) -> list[int]:
        """The first token so far as a one-element list (empty while there is none)."""
        if ids:
            if not isinstance(ids[0], int):
                raise ProtocolError("choices[0].token_ids is not a list of integers")
            return ids[:1]
        if self._tokenizer is not None and any(texts):  # generic + retokenize: approximate
            return [int(t) for t in self._tokenizer.encode("".join(texts), add_special_tokens=False)[:1]]
        return []

    def _outcome(self, deltas: list[Delta]) -> _Outcome:
        finish = next((delta.finish_reason for delta in reversed(deltas) if delta.finish_reason), None)
        if self.options.flavour != "generic":
            return _Outcome([token for delta in deltas for token in (delta.token_ids or ())], finish)
        text = "".join(delta.text for delta in deltas)
        if self._tokenizer is None:
            return _Outcome([], finish)
        ids = [int(t) for t in self._tokenizer.encode(text, add_special_tokens=False)]
        if finish == "stop":
            ids.append(self.spec.eos_token_id)
        return _Outcome(ids, finish)

    def _info(self) -> BackendInfo:
        notes = []
        if self.options.retokenize:
            notes.append("endpoint generic flavour: output token ids re-tokenized from the returned text "
                         "(a deviation: not necessarily the ids the server generated)")
        versions = {f"{self.options.flavour}@{endpoint.url}": endpoint.version for endpoint in self.endpoints}
        urls = len(self.endpoints)
        return BackendInfo(
            name=f"endpoint ({self.options.flavour}, {self.model}, {urls} URL{'s' if urls > 1 else ''})",
            eos_token_id=self.spec.eos_token_id, max_batch_size=self.options.concurrency * urls,
            streaming=self.stream, device="remote", versions=versions, notes=tuple(notes),
        )
