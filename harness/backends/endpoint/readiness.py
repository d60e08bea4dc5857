"""Per-URL state of the endpoint backend and the readiness wait: /health, /v1/models (the model), /version, and
what each server says it runs (ServerFacts: engine, version, served model, cross-query prefix caching).

Where each flavour tells its prefix-caching setting (read from the servers' sources):
- vllm: `GET /metrics` has `vllm:cache_config_info{...,enable_prefix_caching="True|False",...} 1.0`, one line per
  engine, its labels are `CacheConfig.metrics_info()` (every CacheConfig field as a string; vLLM 0.32.0
  `vllm/v1/metrics/loggers.py::log_metrics_info`, `vllm/config/cache.py`). `/server_info` exists only with
  VLLM_SERVER_DEV_MODE=1 (`vllm/entrypoints/serve/__init__.py`), so it is not used. `/v1/models` cards carry
  `root` (the model path).
- sglang: `GET /server_info` (older releases: `/get_server_info`, now deprecated) returns the ServerArgs fields,
  among them `disable_radix_cache`, `model_path`, `served_model_name`, and `version`.
- trtllm-serve: `/version`, `/v1/models` (the model directory's name) and `/metrics` (iteration stats) only;
  `kv_cache_config.enable_block_reuse` is not exposed (TensorRT-LLM `tensorrt_llm/serve/openai_server.py`), so
  its setting is "unknown" unless the harness rendered the server's options itself (backend.server_prefix_caching).

Where each flavour tells its stream interval (tokens per streamed event; the first token always travels alone):
- vllm: only `GET /server_info?config_format=json` (VLLM_SERVER_DEV_MODE=1) has
  `vllm_config.scheduler_config.stream_interval` (vLLM 0.32.0 `vllm/entrypoints/serve/dev/server_info/api_router.py`,
  `vllm/config/scheduler.py`); otherwise backend.server_stream_interval is recorded, else "not reported".
- sglang: `stream_interval` among the ServerArgs fields of `/server_info`.
- trtllm-serve, generic: not exposed; backend.server_stream_interval is recorded, else "not reported".
A value the server reports wins, and one that contradicts backend.server_stream_interval stops the start (ConfigError).
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import aiohttp

from harness.backends.base import UnitLoad
from harness.backends.endpoint.protocol import loads
from harness.errors import BackendError, ConfigError

__all__ = ["NOT_REPORTED", "Endpoint", "PrefixCaching", "ServerFacts", "cache_config_labels", "read_server_facts",
           "wait_ready"]

_POLL_S = 0.5
PrefixCaching = Literal["on", "off", "unknown"]
_VLLM_INFO = "vllm:cache_config_info"
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')
_SGLANG_SETTINGS = ("tp_size", "pp_size", "dp_size", "dtype", "kv_cache_dtype", "quantization", "max_running_requests",
                    "chunked_prefill_size", "schedule_policy", "enable_hierarchical_cache", "disable_radix_cache",
                    "stream_interval")  # tokens per streamed event (the gpt-oss reference runs SGLang with 100-500)
NOT_REPORTED = "not reported"  # the stream interval when neither the server nor the config tells it
_VLLM_SETTINGS = ("enable_prefix_caching", "prefix_caching_hash_algo", "block_size", "cache_dtype",
                  "num_gpu_blocks", "kv_offloading_backend")


@dataclass
class ServerFacts:
    """What one server says it runs: a row of the manifest's `details.engines`."""

    engine: str  # the flavour: vllm, trtllm-serve, sglang, generic
    version: str = "unknown"
    model: str = ""  # the served model id
    model_root: str = ""  # the path or repository it was loaded from, where the server says it
    prefix_caching: PrefixCaching = "unknown"  # cross-query prefix caching / KV-cache reuse
    prefix_caching_source: str = "not reported by the server"
    settings: dict[str, str] = field(default_factory=dict)  # engine settings the server reports
    stream_interval: int | str = NOT_REPORTED  # tokens per streamed event after the first (an int), or NOT_REPORTED
    stream_interval_source: str = "not reported by the server"

    def record(self, url: str) -> dict[str, Any]:
        """The manifest row (plain JSON)."""
        return {"url": url, **asdict(self)}


@dataclass
class Endpoint:
    """One server: its URL, its in-flight limit, counters for the manifest and what it says it runs."""

    url: str
    limit: int
    in_flight: int = 0
    requests: int = 0
    tokens: int = 0
    errors: int = 0
    facts: ServerFacts = field(default_factory=lambda: ServerFacts("generic"))

    @property
    def version(self) -> str:
        """The version the server reported ("unknown" when it did not)."""
        return self.facts.version

    def load(self) -> UnitLoad:
        """The counters, for the backend's report."""
        return UnitLoad(self.url, self.requests, self.tokens, self.errors, self.version)


async def _get(session: aiohttp.ClientSession, url: str, timeout_s: float) -> tuple[int, bytes]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with session.get(url, timeout=timeout) as response:
        return response.status, await response.read()


async def _served_models(session: aiohttp.ClientSession, endpoint: Endpoint, deadline: float,
                         timeout_s: float, generic: bool) -> list[dict[str, Any]]:
    """Poll until /health answers 200 (generic servers may lack it) and /v1/models lists models (their cards)."""
    problem = "no answer yet"
    while True:
        try:
            status, _ = await _get(session, endpoint.url + "/health", timeout_s)
            if status == 200 or (generic and status == 404):
                status, body = await _get(session, endpoint.url + "/v1/models", timeout_s)
                if status == 200:
                    return [card for card in loads(body).get("data", []) if "id" in card]
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


async def _json(session: aiohttp.ClientSession, url: str, timeout_s: float) -> Any:
    """The JSON a GET answers with 200, or None (absent route, error, not JSON)."""
    try:
        status, body = await _get(session, url, timeout_s)
        return loads(body) if status == 200 else None
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
        return None


async def _text(session: aiohttp.ClientSession, url: str, timeout_s: float) -> str | None:
    """The text a GET answers with 200, or None."""
    try:
        status, body = await _get(session, url, timeout_s)
        return body.decode(errors="replace") if status == 200 else None
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


def cache_config_labels(metrics: str) -> list[dict[str, str]]:
    """The labels of every `vllm:cache_config_info` sample of a Prometheus text exposition (one per engine)."""
    found = []
    for line in metrics.splitlines():
        if line.startswith(_VLLM_INFO + "{"):
            labels = line[len(_VLLM_INFO) + 1:line.rfind("}")]
            found.append({key: value.replace('\\"', '"').replace("\\\\", "\\")
                          for key, value in _LABEL.findall(labels)})
    return found


def _vllm_caching(labels: list[dict[str, str]]) -> tuple[PrefixCaching, str, dict[str, str]]:
    values = {engine.get("enable_prefix_caching", "") for engine in labels}
    settings = {key: labels[0][key] for key in _VLLM_SETTINGS if labels and key in labels[0]}
    source = f"/metrics {_VLLM_INFO} enable_prefix_caching"
    if "True" in values:
        return "on", source, settings
    if values == {"False"}:
        return "off", source, settings
    return "unknown", f"/metrics has no {_VLLM_INFO} with enable_prefix_caching (started with --disable-log-stats?)", \
        settings


def _sglang_caching(info: Any) -> tuple[PrefixCaching, str, dict[str, str]]:
    if not isinstance(info, dict) or not isinstance(info.get("disable_radix_cache"), bool):
        return "unknown", "/server_info and /get_server_info have no disable_radix_cache", {}
    settings = {key: str(info[key]) for key in _SGLANG_SETTINGS if key in info}
    state: PrefixCaching = "off" if info["disable_radix_cache"] else "on"
    return state, "/server_info disable_radix_cache", settings


async def _version(session: aiohttp.ClientSession, base: str, timeout_s: float) -> str:
    answer = await _json(session, base + "/version", timeout_s)
    return str(answer.get("version", "unknown")) if isinstance(answer, dict) else "unknown"


def _whole(value: Any) -> int | None:
    """A reported interval: a positive int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


async def _vllm_stream_interval(session: aiohttp.ClientSession, url: str, timeout_s: float) -> int | None:
    """vLLM's --stream-interval from the development /server_info (absent unless VLLM_SERVER_DEV_MODE=1)."""
    info = await _json(session, url + "/server_info?config_format=json", timeout_s)
    config = info.get("vllm_config") if isinstance(info, dict) else None
    scheduler = config.get("scheduler_config") if isinstance(config, dict) else None
    return _whole(scheduler.get("stream_interval")) if isinstance(scheduler, dict) else None


def _stream_interval(url: str, flavour: str, reported: int | None, source: str,
                     declared: int | None) -> tuple[int | str, str]:
    """(interval, where it came from): the server's own report wins; a contradicting config is refused."""
    if reported is not None:
        if declared is not None and declared != reported:
            raise ConfigError(f"{url}: the {flavour} server streams {reported} tokens per event ({source}), but "
                              f"backend.server_stream_interval is {declared}",
                              hint=f"set backend.server_stream_interval: {reported} (or remove it), or restart the "
                                   f"server with --stream-interval {declared}")
        return reported, source
    if declared is not None:
        return declared, "backend.server_stream_interval (the servers' start as the config states it)"
    unknown = {"vllm": "vLLM reports it only under VLLM_SERVER_DEV_MODE=1 (/server_info)",
               "trtllm-serve": "trtllm-serve does not expose stream_interval",
               "sglang": "/server_info has no stream_interval",
               "generic": "a generic server reports no engine settings"}[flavour]
    return NOT_REPORTED, f"{unknown}; backend.server_stream_interval is not set"


async def read_server_facts(session: aiohttp.ClientSession, url: str, flavour: str, card: dict[str, Any],
                            timeout_s: float, declared: PrefixCaching | None = None,
                            declared_interval: int | None = None) -> ServerFacts:
    """What the server at `url` says it runs; `declared`: the prefix-caching setting the harness rendered into the
    server's start (used only when the server itself reports none); `declared_interval`: the stream interval the
    config says the server was started with (backend.server_stream_interval; a server's own report must agree)."""
    facts = ServerFacts(flavour, await _version(session, url, timeout_s), str(card.get("id", "")),
                        str(card.get("root") or ""))
    reported, interval_source = None, ""
    state: PrefixCaching = "unknown"
    source = {"trtllm-serve": "trtllm-serve does not expose kv_cache_config.enable_block_reuse",
              "generic": "a generic server reports no engine settings"}.get(flavour, "not reported by the server")
    if flavour == "vllm":
        metrics = await _text(session, url + "/metrics", timeout_s)
        state, source, facts.settings = _vllm_caching(cache_config_labels(metrics or ""))
        reported = await _vllm_stream_interval(session, url, timeout_s)
        interval_source = "/server_info vllm_config.scheduler_config.stream_interval (VLLM_SERVER_DEV_MODE=1)"
    elif flavour == "sglang":
        info = await _json(session, url + "/server_info", timeout_s)
        if not isinstance(info, dict):
            info = await _json(session, url + "/get_server_info", timeout_s)
        state, source, facts.settings = _sglang_caching(info)
        if isinstance(info, dict):
            facts.model_root = facts.model_root or str(info.get("model_path") or "")
            if facts.version == "unknown" and info.get("version"):
                facts.version = str(info["version"])
            reported, interval_source = _whole(info.get("stream_interval")), "/server_info stream_interval"
    if state == "unknown" and declared is not None:
        state, source = declared, "backend.server_prefix_caching (the start the harness rendered for the server)"
    facts.prefix_caching, facts.prefix_caching_source = state, source
    facts.stream_interval, facts.stream_interval_source = _stream_interval(url, flavour, reported, interval_source,
                                                                           declared_interval)
    return facts


async def wait_ready(session: aiohttp.ClientSession, endpoints: list[Endpoint], model: str | None,
                     ready_timeout_s: float, timeout_s: float, flavour: str = "vllm",
                     declared: PrefixCaching | None = None, declared_interval: int | None = None) -> str:
    """Wait until every URL serves `model` (default: the first model the first URL lists); record what each
    server says it runs (`declared`, `declared_interval`: what the config says of their start); return the model's
    name."""
    deadline = time.monotonic() + ready_timeout_s
    generic = flavour == "generic"
    served = await asyncio.gather(*(_served_models(session, e, deadline, timeout_s, generic) for e in endpoints))
    if model is None:
        if not served[0]:
            raise BackendError(f"{endpoints[0].url}: /v1/models lists no model", hint="set backend.model")
        model = str(served[0][0]["id"])
    cards = []
    for endpoint, listed in zip(endpoints, served, strict=True):
        names = [str(card["id"]) for card in listed]
        if model not in names:
            listed_names = ", ".join(names) or "none"
            raise BackendError(f"{endpoint.url}: does not serve model {model!r} (it serves {listed_names})",
                               hint="set backend.model to a served name, or start the server with that model")
        cards.append(listed[names.index(model)])
    facts = await asyncio.gather(*(read_server_facts(session, e.url, flavour, card, timeout_s, declared,
                                                     declared_interval)
                                   for e, card in zip(endpoints, cards, strict=True)))
    for endpoint, found in zip(endpoints, facts, strict=True):
        endpoint.facts = found
    return model
