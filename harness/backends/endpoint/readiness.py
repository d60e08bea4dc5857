"""Per-URL state of the endpoint backend and the readiness wait: /health, /v1/models (the model), /version."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp

from harness.backends.base import UnitLoad
from harness.backends.endpoint.protocol import loads
from harness.errors import BackendError

__all__ = ["Endpoint", "wait_ready"]

_POLL_S = 0.5


@dataclass
class Endpoint:
    """One server: its URL, its in-flight limit, counters for the manifest and what it says it runs."""

    url: str
    limit: int
    in_flight: int = 0
    requests: int = 0
    tokens: int = 0
    errors: int = 0
    version: str = "unknown"

    def load(self) -> UnitLoad:
        """The counters, for the backend's report."""
        return UnitLoad(self.url, self.requests, self.tokens, self.errors, self.version)


async def _get(session: aiohttp.ClientSession, url: str, timeout_s: float) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(url, timeout=timeout) as response:
        return response.status, await response.read()


async def _served_models(session: aiohttp.ClientSession, endpoint: Endpoint, deadline: float,
                         timeout_s: float, generic: bool) -> list[str]:
    """Poll until /health answers 200 (generic servers may lack it) and /v1/models lists models."""
    problem = "no answer yet"
    while True:
        try:
            status, _ = await _get(session, endpoint.url + "/health", timeout_s)
            if status == 200 or (generic and status == 404):
                status, body = await _get(session, endpoint.url + "/v1/models", timeout_s)
                if status == 200:
                    return [str(card["id"]) for card in loads(body).get("data", []) if "id" in card]
                problem = f"/v1/models answered HTTP {status}"
            else:
                problem = f"/health answered HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            problem = f"{type(err).__name__}: {str(err) or 'no answer'}"
        except (ValueError, AttributeError, TypeError):
            problem = "/v1/models did not answer an OpenAI model list"
        if time.monotonic() >= deadline:
            raise BackendError(f"{endpoint.url}: not ready ({problem})",
                               hint="start the server, check the URL, or raise backend.ready_timeout_s")
        await asyncio.sleep(_POLL_S)


async def _version(session: aiohttp.ClientSession, endpoint: Endpoint, timeout_s: float) -> str:
    try:
        status, body = await _get(session, endpoint.url + "/version", timeout_s)
        if status == 200:
            return str(loads(body).get("version", "unknown"))
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError):
        pass
    return "unknown"


async def wait_ready(session: aiohttp.ClientSession, endpoints: list[Endpoint], model: str | None,
                     ready_timeout_s: float, timeout_s: float, generic: bool = False) -> str:
    """Wait until every URL serves `model` (default: the first model the first URL lists); return its name."""
    deadline = time.monotonic() + ready_timeout_s
    served = await asyncio.gather(*(_served_models(session, e, deadline, timeout_s, generic) for e in endpoints))
    if model is None:
        if not served[0]:
            raise BackendError(f"{endpoints[0].url}: /v1/models lists no model", hint="set backend.model")
        model = served[0][0]
    for endpoint, names in zip(endpoints, served, strict=True):
        if model not in names:
            listed = ", ".join(names) or "none"
            raise BackendError(f"{endpoint.url}: does not serve model {model!r} (it serves {listed})",
                               hint="set backend.model to a served name, or start the server with that model")
    versions = await asyncio.gather(*(_version(session, e, timeout_s) for e in endpoints))
    for endpoint, version in zip(endpoints, versions, strict=True):
        endpoint.version = version
    return model
