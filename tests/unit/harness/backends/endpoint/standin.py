"""A stand-in OpenAI-compatible server on 127.0.0.1 (ephemeral port), pure asyncio, for the endpoint backend's tests.

It models the vLLM 0.32 OpenAI server as measured (see /work/notes/vllm-facts.md): `GET /health` (200, empty),
`GET /version` ({"version": ...}), `GET /v1/models` (OpenAI model list), `POST /v1/completions` with a token-id
`prompt`, `max_tokens`, `return_token_ids` -> `choices[0].token_ids` (whole list, or one delta per SSE event,
`prompt_token_ids` in the first event only, `data: [DONE]` last). Generated ids are a pure function of the prompt,
so tests know the answer. `mode` makes completions misbehave on purpose: reset, stall, http500, broken_sse,
truncated, bad_ids (ids that are not int32 integers in the 4th and 6th events), slow.

Given `prefix_caching` (True/False) it also reports itself as vLLM does: `GET /metrics` with a
`vllm:cache_config_info{...,enable_prefix_caching="True|False",...} 1.0` sample (vLLM 0.32.0
`vllm/v1/metrics/loggers.py::log_metrics_info`), and `root` (the model path) in its /v1/models card.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from typing import Any

__all__ = ["StandIn", "expected_ids"]


def expected_ids(prompt: list[int], count: int) -> list[int]:
    """What the stand-in generates for a prompt: deterministic, never the EOS id 2."""
    seed = sum(prompt) % 997
    return [3 + (seed + 7 * i) % 1000 for i in range(count)]


class StandIn:
    """Start with `with StandIn() as server:`; `server.url` is its base URL; set `server.mode` at any time."""

    def __init__(self, model: str = "standin", mode: str = "ok", delay_s: float = 0.0, port: int = 0,
                 version: str = "standin-0.32", prefix_caching: bool | None = None, root: str | None = None) -> None:
        self.model = model
        self.version = version
        self.prefix_caching = prefix_caching  # None: no /metrics (a server that reports no engine settings)
        self.root = root
        self.mode = mode
        self.delay_s = delay_s
        self.completions = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = port  # 0: an ephemeral port

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> StandIn:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.port), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def close_listener(self) -> None:
        """Stop accepting connections and drop open ones (new connections are then refused)."""
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)

    def __exit__(self, *_: object) -> None:
        self.close_listener()

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.run_coroutine_threadsafe(cancel_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if not await self._route(method, path, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, payload: Any) -> bool:
        data = b"" if payload is None else json.dumps(payload).encode()
        return await self._send(writer, status, "application/json", data)

    async def _send(self, writer: asyncio.StreamWriter, status: int, content_type: str, data: bytes) -> bool:
        reason = {200: "OK", 404: "Not Found", 500: "Internal Server Error"}[status]
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        await writer.drain()
        return True

    def _metrics(self) -> bytes:
        """A Prometheus exposition as vLLM's /metrics writes it (the cache-config info gauge among others)."""
        labels = {"block_size": "16", "cache_dtype": "auto", "enable_prefix_caching": str(self.prefix_caching),
                  "engine": "0", "num_gpu_blocks": "3640", "prefix_caching_hash_algo": "sha256"}
        text = "".join(f'{k}="{v}",' for k, v in labels.items()).rstrip(",")
        return ("# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                "# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{engine="0",model_name="{self.model}"}} 0.0\n'
                "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
                "# TYPE vllm:cache_config_info gauge\n"
                f"vllm:cache_config_info{{{text}}} 1.0\n").encode()

    async def _route(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter) -> bool:
        if method == "GET" and path == "/health":
            return await self._json(writer, 200, None)
        if method == "GET" and path == "/version":
            return await self._json(writer, 200, {"version": self.version})
        if method == "GET" and path == "/metrics" and self.prefix_caching is not None:
            return await self._send(writer, 200, "text/plain; version=0.0.4", self._metrics())
        if method == "GET" and path == "/v1/models":
            card = {"id": self.model, "object": "model", **({"root": self.root} if self.root else {})}
            return await self._json(writer, 200, {"object": "list", "data": [card]})
        if method == "POST" and path == "/v1/completions":
            self.completions += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await self._complete(json.loads(body), writer)
            finally:
                self.in_flight -= 1
        return await self._json(writer, 404, {"error": {"message": f"no route {path}", "code": 404}})

    async def _complete(self, request: dict[str, Any], writer: asyncio.StreamWriter) -> bool:
        self.bodies.append(request)
        mode = self.mode
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if mode == "http500":
            return await self._json(writer, 500, {"error": {"message": "engine crashed", "code": 500}})
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        ids = expected_ids(request["prompt"], int(request["max_tokens"]))
        if not request.get("stream"):
            if mode == "stall":
                await asyncio.sleep(3600)
            choice = {"index": 0, "text": "x" * len(ids), "finish_reason": "length", "token_ids": ids,
                      "prompt_token_ids": request["prompt"]}
            answer = {"object": "text_completion", "model": self.model, "choices": [choice]}
            return await self._json(writer, 200, answer)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
        for i, token in enumerate(ids):
            last = i == len(ids) - 1
            choice = {"index": 0, "text": "x", "finish_reason": "length" if last else None, "token_ids": [token],
                      "prompt_token_ids": request["prompt"] if i == 0 else None}
            if mode == "bad_ids" and i in (3, 5):
                choice["token_ids"] = [2**40] if i == 3 else ["x"]  # not int32 token ids
            event = json.dumps({"object": "text_completion", "choices": [choice]}).encode()
            if mode == "broken_sse" and i == 1:
                event = event[: len(event) // 2]
            if mode == "truncated" and last:
                break
            writer.write(b"data: " + event + b"\n\n")
            await writer.drain()
            if mode == "stall" and i == 0:
                await asyncio.sleep(3600)
        if mode != "truncated":
            writer.write(b"data: [DONE]\n\n")
        await writer.drain()
        return False
