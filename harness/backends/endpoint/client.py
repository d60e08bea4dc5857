"""EndpointBackend: OpenAI-compatible servers as an AsyncEngine: one aiohttp session, least-in-flight over URLs,
SSE first tokens.

The async engine core (harness.backends.core) owns the loop thread, the FIFO queue, the coalescing of first tokens
and completions found in one loop turn (one round of network reads) into one sink call each, cancel-all and the
bounded stop. This module holds the HTTP calls: admission picks the URL with the fewest requests in flight that is
below its `concurrency`; a request that cannot be served (refused, reset, HTTP error, stalled longer than
`read_timeout_s`, malformed answer) fails with a one-line reason naming the URL; nothing is retried, so a run never
hides a server problem. A first token is forwarded from the first SSE event that carries ids; later events of the
stream are only parsed, never forwarded one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from harness.backends.base import BackendInfo, BackendReport, BackendSetup
from harness.backends.core import AsyncEngineBackend, EngineBase, RequestFailed
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
from harness.backends.sampling import SamplingSpec
from harness.errors import BackendError, ConfigError
from harness.types import GenerationRequest

__all__ = ["EndpointBackend", "EndpointEngine"]

_IDLE_KEEPALIVE_S = 4.0  # below uvicorn's default --timeout-keep-alive of 5 s
_BODY_END_S = 1.0  # how long a stream's body may take to end after its [DONE] event
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


class _Failed(Exception):
    """One request's failure; the message is prefixed with the URL by the caller."""


@dataclass
class _Outcome:
    ids: Sequence[int]  # an int32 array for the token-id flavours' streams
    finish_reason: str | None


class EndpointEngine(EngineBase):
    """HTTP servers as an AsyncEngine (see the module docstring)."""

    label = "endpoint"
    options: EndpointOptions

    def __init__(self, options: EndpointOptions, setup: BackendSetup) -> None:
        super().__init__(options, setup)
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
        self.endpoints = [Endpoint(url, options.concurrency, facts=ServerFacts(options.flavour))
                          for url in options.urls]
        self.model = options.model or ""
        self._tokenizer: Any = None
        self._session: aiohttp.ClientSession | None = None

    def prepare(self) -> None:
        """The run's tokenizer, when the generic flavour re-tokenizes returned text."""
        if self.options.retokenize:
            if self.setup.tokenizer is None:
                raise ConfigError("backend.retokenize needs the run's tokenizer, which this setup does not carry",
                                  hint="set model.tokenizer (or model.path) to the served model's tokenizer")
            self._tokenizer = self.setup.tokenizer

    async def open(self) -> BackendInfo:
        """Wait until every URL serves the model, then one warm-up request per URL."""
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.options.connect_timeout_s,
                                        sock_read=self.options.read_timeout_s)
        # Idle connections are dropped before uvicorn's 5 s keep-alive closes them (vLLM's and SGLang's servers), so
        # that no request is sent on a connection the server is closing at that moment.
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=self.options.concurrency + 4,
                                         keepalive_timeout=_IDLE_KEEPALIVE_S)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_HEADERS)
        self.model = await wait_ready(self._session, self.endpoints, self.options.model,
                                      self.options.ready_timeout_s, self.options.connect_timeout_s,
                                      self.options.flavour, self.options.server_prefix_caching)
        await asyncio.gather(*(self._warm(endpoint) for endpoint in self.endpoints))
        return self._info()

    def report(self) -> BackendReport:
        """Per-URL load (requests, tokens, errors) and server versions; flavour, model and streaming as a section;
        `engines`: per URL what the server says it runs (engine, version, served model, prefix caching, settings)."""
        return BackendReport(tuple(endpoint.load() for endpoint in self.endpoints),
                             {"endpoint": {"flavour": self.options.flavour, "model": self.model,
                                           "stream": self.stream, "retokenize": self.options.retokenize},
                              "engines": [endpoint.facts.record(endpoint.url) for endpoint in self.endpoints]})

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

    async def close(self) -> None:
        """Close the HTTP session (its connections)."""
        if self._session is not None:
            await self._session.close()

    # ---- requests (on the loop thread) ----

    def admit(self) -> Endpoint | None:
        """The URL with the fewest requests in flight below its concurrency, or None when every URL is full."""
        free = [endpoint for endpoint in self.endpoints if endpoint.in_flight < endpoint.limit]
        if not free:
            return None
        endpoint = min(free, key=lambda e: e.in_flight)
        endpoint.in_flight += 1
        return endpoint

    def release(self, slot: Endpoint) -> None:
        """One request of this URL ended."""
        slot.in_flight -= 1

    async def generate(self, request: GenerationRequest, slot: Endpoint,
                       first: Callable[[Sequence[int]], None] | None) -> Sequence[int]:
        """POST one completion to the admitted URL; counts its requests, tokens and errors."""
        endpoint = slot
        endpoint.requests += 1
        body = completion_body(self.options.flavour, self.model, request.input_ids, self.spec, self.stream)
        try:
            outcome = await self._exchange(endpoint, body, first)
        except _Failed as err:
            endpoint.errors += 1
            raise RequestFailed(f"{endpoint.url}: {err}") from None
        except asyncio.CancelledError:
            endpoint.errors += 1
            raise
        endpoint.tokens += len(outcome.ids)
        return outcome.ids

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
                await self._finish_body(response)
                break
        if not done and pending.strip():
            raise ProtocolError(f"the SSE stream ended inside an event: {pending[:80]!r}")
        if not done and not finish:
            raise ProtocolError("the SSE stream ended before its last event (no finish_reason, no [DONE])")
        if flavour != "generic":
            return _Outcome(int32_ids(ids), finish)
        return self._outcome([Delta(None, "".join(texts), finish)])

    @staticmethod
    async def _finish_body(response: aiohttp.ClientResponse) -> None:
        """Read the body's end after `data: [DONE]` (uvicorn writes the chunked terminator separately), so that the
        connection goes back to the pool instead of being closed; a server slower than _BODY_END_S to end the body
        only costs its connection."""
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            await asyncio.wait_for(response.content.read(), _BODY_END_S)

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


class EndpointBackend(AsyncEngineBackend):
    """The Backend: EndpointEngine on the async engine core; start waits for every URL (ready + read timeouts)."""

    def __init__(self, options: EndpointOptions, setup: BackendSetup) -> None:
        self.engine: EndpointEngine = EndpointEngine(options, setup)
        super().__init__(self.engine, "endpoint-backend",
                         open_timeout_s=options.ready_timeout_s + options.read_timeout_s + 30)

    @property
    def endpoints(self) -> list[Endpoint]:
        """The servers, with their load counters."""
        return self.engine.endpoints

    @property
    def model(self) -> str:
        """The served model's name (known once started)."""
        return self.engine.model
