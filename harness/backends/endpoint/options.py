"""EndpointOptions: the `backend:` section of the endpoint backend (servers, flavour, limits, timeouts)."""

from __future__ import annotations

import os
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from harness.backends.options import BackendOptions

__all__ = ["FLAVOURS", "EndpointOptions", "Flavour"]

Flavour = Literal["vllm", "trtllm-serve", "sglang", "generic"]
FLAVOURS: tuple[str, ...] = ("vllm", "trtllm-serve", "sglang", "generic")


def normalise_url(url: str) -> str:
    """http(s)://host:port[/prefix] without a trailing slash or /v1; anything else is refused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) base URL such as http://127.0.0.1:8000")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: a base URL has no query or fragment")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError as err:
        raise ValueError(f"{url!r}: {err}") from None
    path = parts.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return f"{parts.scheme}://{parts.netloc}{path}"


class EndpointOptions(BackendOptions):
    """OpenAI-compatible servers, prompts and outputs as token ids; several URLs are served least-in-flight."""

    kind: Literal["endpoint"] = "endpoint"
    urls: tuple[str, ...] = Field(min_length=1, description="base URLs, e.g. http://127.0.0.1:8000 (one per server)")
    model: str | None = Field(None, description="served model name; default: the one /v1/models lists")
    flavour: Flavour = Field("vllm", description="how output token ids come back: vllm, trtllm-serve, sglang, generic")
    concurrency: int = Field(64, ge=1, description="requests in flight per URL")
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(120.0, gt=0, description="a request fails when no byte arrives for this long")
    ready_timeout_s: float = Field(600.0, gt=0, description="start waits this long for every URL to serve the model")
    stop_timeout_s: float = Field(60.0, gt=0, description="stop waits this long for the engine to shut down; a "
                                                           "hang beyond it is abandoned and fails the run (exit 4)")
    retokenize: bool = Field(False, description="generic flavour only: token ids from the returned text (a deviation)")
    stream: Literal["auto", "true", "false"] | bool = Field(
        "auto", description="auto: stream (SSE) when first tokens are needed (Server/Interactive), not in Offline")
    client_workers: int | Literal["auto"] = Field(
        "auto", description="auto (default): worker processes, one per usable core but two (at least one), shared by "
                            "the replicas of one process; 0: HTTP and SSE on one event loop in the LoadGen process; "
                            "N >= 1: N worker processes (the LoadGen process keeps the least-in-flight admission)")
    client_worker_cpus: tuple[int, ...] | None = Field(
        None, description="CPUs the worker processes are pinned to (worker k: the k-th, round robin); null: not pinned")
    client_event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="the worker processes' event loop: auto (uvloop where installed, else asyncio's), uvloop "
                            "(required), asyncio")
    server_prefix_caching: Literal["on", "off"] | None = Field(
        None, description="the servers' cross-query prefix caching as the harness rendered their start (the Slurm "
                          "serve stages set it); recorded only where a server reports no setting itself "
                          "(trtllm-serve); null: what the servers report, else unknown")
    server_stream_interval: int | None = Field(
        None, description="tokens per streamed event the servers were started with (vLLM and SGLang "
                          "--stream-interval, trtllm-serve's stream_interval LLM argument; the first token always "
                          "comes alone); the Slurm serve stages start vLLM with it; a server that reports its own "
                          "(SGLang, vLLM under VLLM_SERVER_DEV_MODE=1) must agree; null: the servers' own setting, "
                          "recorded where they report it")

    @field_validator("server_stream_interval", mode="before")
    @classmethod
    def _whole_tokens(cls, value: object) -> object:
        """A positive whole number of tokens (a bool or a fraction is refused, not rounded)."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit() \
                or int(value) < 1:
            raise ValueError("expected a whole number of tokens >= 1 (what the servers' --stream-interval was), or "
                             "null for the servers' own setting")
        return int(value)

    @model_validator(mode="after")
    def _retokenize_only_for_text(self) -> EndpointOptions:
        if self.retokenize and self.flavour != "generic":
            raise ValueError(f"backend.retokenize applies to flavour generic only; {self.flavour} returns the "
                             "generated token ids exactly (remove retokenize)")
        return self

    @model_validator(mode="after")
    def _workers_need_ids(self) -> EndpointOptions:
        if self.retokenize and self.client_workers not in (0, "auto"):
            raise ValueError("backend.client_workers needs a flavour that returns token ids; with retokenize the "
                             "client runs in the LoadGen process (client_workers: 0)")
        if isinstance(self.client_workers, int) and self.client_workers < 0:
            raise ValueError("backend.client_workers is 0 (in process), a number of worker processes, or auto")
        return self

    def worker_count(self, replicas: int = 1) -> int:
        """How many client worker processes (0: the in-process client). auto: the usable cores but two, divided among
        the `replicas` of this process, at least 1 (at most 64); with retokenize (text turned into ids in the
        LoadGen process) auto is 0."""
        if self.client_workers != "auto":
            return int(self.client_workers)
        if self.retokenize:
            return 0
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min((cores - 2) // max(1, replicas), 64))

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, urls: object) -> object:
        """A single URL (`--set backend.urls=http://h:8000`) is a list of one."""
        return (urls,) if isinstance(urls, str) else urls

    @field_validator("urls")
    @classmethod
    def _valid_urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(normalise_url(url) for url in urls)
        duplicates = sorted({url for url in normalised if normalised.count(url) > 1})
        if duplicates:
            raise ValueError(f"backend.urls lists {', '.join(duplicates)} more than once")
        return normalised

    @property
    def loads_model_files(self) -> bool:
        """The server loads the model; model.path here only names the tokenizer."""
        return False

    def deviations(self) -> list[str]:
        """Re-tokenized outputs are a deviation: the ids scored are not necessarily the ids the server generated."""
        if not self.retokenize:
            return []
        return [f"backend.retokenize: output token ids re-tokenized from the text a {self.flavour} server returned "
                "(not necessarily the ids it generated; see docs/endpoints.md: can change ROUGE and TEST06)"]

    def streams(self, streams_first_token: bool) -> bool:
        """Whether requests are streamed (SSE) in this scenario."""
        if self.stream in ("auto",):
            return streams_first_token
        return self.stream in (True, "true")

    def for_replica(self, index: int) -> EndpointOptions:
        """Data-parallel replica `index` talks to one URL of the list (round robin); one URL: unchanged."""
        if len(self.urls) == 1:
            return self
        return self.model_copy(update={"urls": (self.urls[index % len(self.urls)],)})
