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
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from harness.backends.base import BackendInfo, BackendReport, BackendSetup
from harness.backends.core import AsyncEngineBackend, EngineBase, RequestFailed
from harness.backends.endpoint.exchange import ExchangeFailed, Outcome, Wire, exchange, new_session
from harness.backends.endpoint.options import EndpointOptions
from harness.backends.endpoint.protocol import completion_body
from harness.backends.endpoint.readiness import Endpoint, ServerFacts, wait_ready
from harness.backends.sampling import SamplingSpec
from harness.errors import BackendError, ConfigError
from harness.types import GenerationRequest

__all__ = ["EndpointBackend", "EndpointEngine"]

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
        self._next_url = 0  # where the search for the least-loaded URL starts: ties go round robin
        self._tokenizer: Any = None
        self._session: aiohttp.ClientSession | None = None
        self.wire: Wire | None = None

    def prepare(self) -> None:
        """The run's tokenizer, when the generic flavour re-tokenizes returned text."""
        if self.options.retokenize:
            if self.setup.tokenizer is None:
                raise ConfigError("backend.retokenize needs the run's tokenizer, which this setup does not carry",
                                  hint="set model.tokenizer (or model.path) to the served model's tokenizer")
            self._tokenizer = self.setup.tokenizer

    async def open(self) -> BackendInfo:
        """Wait until every URL serves the model, then one warm-up request per URL."""
        self.wire = Wire(self.options.flavour, self.options.connect_timeout_s, self.options.read_timeout_s,
                         self._tokenizer, self.spec.eos_token_id)
        self._session = new_session(self.wire, self.options.concurrency + 4)
        self.model = await wait_ready(self._session, self.endpoints, self.options.model,
                                      self.options.ready_timeout_s, self.options.connect_timeout_s,
                                      self.options.flavour, self.options.server_prefix_caching,
                                      self.options.server_stream_interval)
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
        except ExchangeFailed as err:
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
        """The URL with the fewest requests in flight below its concurrency (ties in round-robin order, so idle
        servers share the load), or None when every URL is full."""
        count = len(self.endpoints)
        chosen: int | None = None
        for step in range(count):
            index = (self._next_url + step) % count
            endpoint = self.endpoints[index]
            if endpoint.in_flight < endpoint.limit and (
                    chosen is None or endpoint.in_flight < self.endpoints[chosen].in_flight):
                chosen = index
        if chosen is None:
            return None
        self._next_url = (chosen + 1) % count
        endpoint = self.endpoints[chosen]
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
        except ExchangeFailed as err:
            endpoint.errors += 1
            raise RequestFailed(f"{endpoint.url}: {err}") from None
        except asyncio.CancelledError:
            endpoint.errors += 1
            raise
        endpoint.tokens += len(outcome.ids)
        return outcome.ids

    async def _exchange(self, endpoint: Endpoint, body: dict[str, Any],
                        on_first: Callable[[Sequence[int]], None] | None) -> Outcome:
        """POST one completion (the shared request code, harness.backends.endpoint.exchange)."""
        assert self._session is not None and self.wire is not None
        return await exchange(self._session, self.wire, endpoint.url, body, on_first)

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
