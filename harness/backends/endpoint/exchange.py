"""One HTTP request of the endpoint client: POST a completion, read the JSON answer or the SSE stream, report the first
ids; the session settings and connection warm-up. Shared by the in-process client and the worker processes.

Nothing here knows about the engine core or LoadGen: `exchange` is a plain async function that returns the generated
ids or raises `ExchangeFailed` with a one-line reason (the caller prefixes the URL).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from harness.backends.endpoint.protocol import (
    COMPLETIONS,
    Delta,
    ProtocolError,
    dumps,
    int32_ids,
    loads,
    parse_choice,
    sse_payloads,
    stream_events,
)

__all__ = ["ExchangeFailed", "Outcome", "Wire", "exchange", "new_session", "open_connections"]

IDLE_KEEPALIVE_S = 4.0  # below uvicorn's default --timeout-keep-alive of 5 s
_BODY_END_S = 1.0  # how long a stream's body may take to end after its [DONE] event
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
_CONNECTS_PER_MS = 4  # warm-up pace: connections opened per millisecond


class ExchangeFailed(Exception):
    """One request's failure; the message is prefixed with the URL by the caller."""


@dataclass
class Outcome:
    """What one answer carried: its ids (an int32 array for the token-id flavours' streams) and finish_reason."""

    ids: Sequence[int]
    finish_reason: str | None


@dataclass(frozen=True)
class Wire:
    """How requests travel: the flavour, the timeouts, and (generic + retokenize only) the tokenizer and EOS id."""

    flavour: str
    connect_timeout_s: float
    read_timeout_s: float
    tokenizer: Any = None
    eos_token_id: int = 0


def new_session(wire: Wire, limit_per_host: int) -> aiohttp.ClientSession:
    """The client session: keep-alive, idle connections dropped before uvicorn's 5 s keep-alive closes them (vLLM's
    and SGLang's servers), so that no request is sent on a connection the server is closing at that moment."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=wire.connect_timeout_s, sock_read=wire.read_timeout_s)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=limit_per_host, keepalive_timeout=IDLE_KEEPALIVE_S)
    return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=_HEADERS)


async def open_connections(session: aiohttp.ClientSession, url: str, count: int) -> int:
    """Open `count` keep-alive connections to `url` into the session's pool, paced (a few per millisecond), so that
    the first seconds of a run are not a connect storm; returns how many were opened. A connection that cannot be
    opened raises ExchangeFailed."""
    from yarl import URL

    connector = session.connector
    if connector is None or count <= 0:
        return 0
    loop = asyncio.get_running_loop()

    async def one() -> Any:
        request = aiohttp.ClientRequest("GET", URL(url + "/health"), loop=loop)
        return await connector.connect(request, [], session.timeout)

    connections: list[Any] = []
    try:
        for start in range(0, count, _CONNECTS_PER_MS):
            batch = [loop.create_task(one()) for _ in range(min(_CONNECTS_PER_MS, count - start))]
            done = await asyncio.gather(*batch, return_exceptions=True)
            for item in done:
                if isinstance(item, BaseException):
                    raise ExchangeFailed(f"cannot open a connection ({type(item).__name__}: {item})")
                connections.append(item)
            await asyncio.sleep(0.001)
    finally:
        for connection in connections:
            connection.release()  # back into the pool, kept alive
    return len(connections)


async def exchange(session: aiohttp.ClientSession, wire: Wire, url: str, body: dict[str, Any],
                   on_first: Callable[[Sequence[int]], None] | None) -> Outcome:
    """POST one completion to `url`; the generated ids, or ExchangeFailed with a one-line reason. `on_first` gets the
    first ids as soon as the SSE event carrying them is read."""
    started = time.monotonic()
    try:
        async with session.post(url + COMPLETIONS, data=dumps(body)) as response:
            if response.status != 200:
                detail = (await response.read())[:300].decode(errors="replace").replace("\n", " ")
                raise ExchangeFailed(f"HTTP {response.status} from {COMPLETIONS}: {detail}")
            if body["stream"]:
                return await _read_stream(wire, response, on_first)
            return _outcome(wire, [parse_choice(wire.flavour, loads(await response.read()))])
    except aiohttp.ConnectionTimeoutError:
        raise ExchangeFailed(f"connect timed out after {wire.connect_timeout_s:g} s") from None
    except (aiohttp.SocketTimeoutError, TimeoutError):
        raise ExchangeFailed(f"stalled: no bytes for {wire.read_timeout_s:g} s "
                             f"({time.monotonic() - started:.1f} s into the request)") from None
    except aiohttp.ClientConnectorError as err:
        raise ExchangeFailed(f"cannot connect ({err.os_error.strerror or err.os_error})") from None
    except aiohttp.ServerDisconnectedError:
        raise ExchangeFailed("the server closed the connection before the answer was complete") from None
    except aiohttp.ClientPayloadError as err:
        raise ExchangeFailed(f"broken response body ({err})") from None
    except aiohttp.ClientError as err:
        raise ExchangeFailed(f"{type(err).__name__}: {err}") from None
    except ProtocolError as err:
        raise ExchangeFailed(str(err)) from None
    except ValueError as err:  # JSON decoding
        raise ExchangeFailed(f"answer is not valid JSON ({str(err)[:80]})") from None


async def _read_stream(wire: Wire, response: aiohttp.ClientResponse,
                       on_first: Callable[[Sequence[int]], None] | None) -> Outcome:
    """Read an SSE stream to its end; `on_first` gets the first ids as soon as the event carrying them is read."""
    flavour = wire.flavour
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
            first = _first_ids(wire, ids, texts)
            if first:
                on_first(first)
                on_first = None
        if done:
            await _finish_body(response)
            break
    if not done and pending.strip():
        raise ProtocolError(f"the SSE stream ended inside an event: {pending[:80]!r}")
    if not done and not finish:
        raise ProtocolError("the SSE stream ended before its last event (no finish_reason, no [DONE])")
    if flavour != "generic":
        return Outcome(int32_ids(ids), finish)
    return _outcome(wire, [Delta(None, "".join(texts), finish)])


async def _finish_body(response: aiohttp.ClientResponse) -> None:
    """Read the body's end after `data: [DONE]` (uvicorn writes the chunked terminator separately), so that the
    connection goes back to the pool instead of being closed; a server slower than _BODY_END_S to end the body only
    costs its connection."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        await asyncio.wait_for(response.content.read(), _BODY_END_S)


def _first_ids(wire: Wire, ids: list[int], texts: list[str]) -> list[int]:
    """The first token so far as a one-element list (empty while there is none)."""
    if ids:
        if not isinstance(ids[0], int):
            raise ProtocolError("choices[0].token_ids is not a list of integers")
        return ids[:1]
    if wire.tokenizer is not None and any(texts):  # generic + retokenize: approximate
        return [int(t) for t in wire.tokenizer.encode("".join(texts), add_special_tokens=False)[:1]]
    return []


def _outcome(wire: Wire, deltas: list[Delta]) -> Outcome:
    finish = next((delta.finish_reason for delta in reversed(deltas) if delta.finish_reason), None)
    if wire.flavour != "generic":
        return Outcome([token for delta in deltas for token in (delta.token_ids or ())], finish)
    text = "".join(delta.text for delta in deltas)
    if wire.tokenizer is None:
        return Outcome([], finish)
    ids = [int(t) for t in wire.tokenizer.encode(text, add_special_tokens=False)]
    if finish == "stop":
        ids.append(wire.eos_token_id)
    return Outcome(ids, finish)
