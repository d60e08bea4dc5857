"""A stand-in OpenAI-compatible server on 127.0.0.1 (ephemeral port), pure asyncio, for the endpoint backend's tests.

It models the vLLM 0.32 OpenAI server as measured and as its sources say (vllm-project/vllm, files named below,
read at check_stop @ 018d5dc7, sampling_params.py @ 00388f65, completion/protocol.py @ 002032ee, serving.py
@ 030ea52e; releases before the v1 check_stop reordering tested max_tokens first, so an EOS drawn as the last
allowed id came back with finish_reason "length" there, the same ids):
`GET /health` (200, empty), `GET /version` ({"version": ...}), `GET /v1/models` (OpenAI model list),
`POST /v1/completions` with a token-id `prompt`; with `return_token_ids`, `choices[0].token_ids` (the whole list,
or one delta per SSE event, `prompt_token_ids` in the first event only, `data: [DONE]` last), else no ids
(`vllm/entrypoints/openai/completion/serving.py`; `detokenize: false`, trtllm-serve's way of asking, also
gets ids, so that the trtllm-serve flavour's tests can use this stand-in).

The model: the greedy answer to a prompt is `expected_ids(prompt, n)` (ids 3..1002, never EOS), except that from
its natural length on (`lengths`: a (low, high) range, or a function of the prompt; None: never) it picks EOS,
and at the positions of `planted` it picks the planted id (a stop id a test wants to see). The request decides
where generation ends, as vLLM does:
- stop conditions, checked after each token (`vllm/v1/core/sched/utils.py::check_stop`): none before `min_tokens`
  ids; then EOS (not when `ignore_eos`), then any of `stop_token_ids` (`stop_reason` = that id), each with
  finish_reason "stop" and the id kept as the answer's last token id (its text is not rendered:
  `vllm/v1/engine/detokenizer.py::update` records a stop-terminated id in token_ids but skips its text); then
  `max_tokens` (finish_reason "length");
- `ignore_eos` keeps EOS out of the stop checks only; ids in `stop_token_ids` still stop. The checkpoint's
  generation_config EOS ids (`generation_eos`) join `stop_token_ids` unless `ignore_eos`
  (`vllm/sampling_params.py::SamplingParams.update_from_generation_config`);
- `min_tokens`: before that many ids, EOS, `stop_token_ids` and the generation_config EOS ids (the
  `all_stop_token_ids` set) are masked, so the model picks its next choice (the babble id) there
  (`vllm/v1/sample/logits_processor/builtin.py::MinTokensLogitsProcessor`);
- `max_tokens` < 1 or `min_tokens` > `max_tokens` is HTTP 400 (`SamplingParams._verify_args`); a field that
  CompletionRequest does not declare is ignored (`OpenAIBaseModel` has extra="allow" and only logs them,
  `vllm/entrypoints/openai/engine/protocol.py`), and recorded here in `ignored`.

HTTP as uvicorn serves vLLM (`vllm/entrypoints/launcher.py::serve_http`): HTTP/1.1 keep-alive, a connection serves
request after request until it is idle for `keep_alive_s` (uvicorn's timeout_keep_alive = VLLM_HTTP_TIMEOUT_KEEP_ALIVE,
5 s, `vllm/envs.py`) or the client sends `Connection: close`; JSON answers carry Content-Length, SSE answers are
chunked (`transfer-encoding: chunked`, one chunk per event, the zero-length chunk after `[DONE]`). uvicorn writes
that last chunk on its own (Starlette's StreamingResponse sends an empty final body message after the generator's
last `data: [DONE]`), so a client may read `[DONE]` before the body has ended: `end_gap_s` (seconds) makes that
happen every time; None (default) sends both in one write. `connections` counts accepted TCP connections.

Delays: `delay_s` before the first token (or error), `token_delay_s` between tokens (a number, or a function of the
prompt). `mode` makes completions misbehave on purpose: reset, stall, http500, broken_sse, truncated, bad_ids (ids
that are not int32 integers in the 4th and 6th events), slow (50 ms a token).

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["EOS", "Answer", "StandIn", "expected_ids", "natural_length"]

EOS = 2
PerPrompt = float | Callable[[list[int]], float]
Lengths = tuple[int, int] | Callable[[list[int]], int] | None
# The fields vLLM's CompletionRequest declares (vllm/entrypoints/openai/completion/protocol.py); others are ignored.
KNOWN_FIELDS = frozenset((
    "model", "prompt", "echo", "frequency_penalty", "logit_bias", "logprobs", "max_tokens", "n", "presence_penalty",
    "seed", "stop", "stream", "stream_options", "suffix", "temperature", "top_p", "user", "use_beam_search", "top_k",
    "min_p", "repetition_penalty", "watermarking", "length_penalty", "stop_token_ids", "include_stop_str_in_output",
    "ignore_eos", "min_tokens", "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens",
    "truncation_side", "allowed_token_ids", "prompt_logprobs", "logprob_token_ids", "bad_words", "prompt_embeds",
    "add_special_tokens", "response_format", "structured_outputs", "priority", "request_id", "session_id",
    "return_tokens_as_token_ids", "return_token_ids", "routed_experts_prompt_start", "return_token_offsets",
    "return_mm_kwargs", "cache_salt", "kv_transfer_params", "ec_transfer_params", "vllm_xargs",
    "repetition_detection", "thinking_token_budget", "stream_interval"))


def _seed(prompt: list[int]) -> int:
    return sum(prompt) % 997


def expected_ids(prompt: list[int], count: int) -> list[int]:
    """The model's babble for a prompt (its answer without EOS or planted ids): deterministic, never EOS (2)."""
    seed = _seed(prompt)
    return [3 + (seed + 7 * i) % 1000 for i in range(count)]


def natural_length(prompt: list[int], lengths: Lengths) -> int | None:
    """How many ids the model says before it picks EOS (None: it never does)."""
    if lengths is None:
        return None
    if callable(lengths):
        return lengths(prompt)
    low, high = lengths
    return low + _seed(prompt) % (high - low + 1)


@dataclass(frozen=True)
class Answer:
    """One generated answer: its ids, finish_reason ("stop" | "length") and stop_reason (the stop id, or None)."""

    ids: list[int]
    finish_reason: str
    stop_reason: int | None


class StandIn:
    """Start with `with StandIn() as server:`; `server.url` is its base URL; set `server.mode` at any time."""

    def __init__(self, model: str = "standin", mode: str = "ok", delay_s: PerPrompt = 0.0, port: int = 0,
                 version: str = "standin-0.32", prefix_caching: bool | None = None, root: str | None = None, *,
                 lengths: Lengths = None, planted: Mapping[int, int] | None = None, eos: int = EOS,
                 generation_eos: tuple[int, ...] = (), token_delay_s: PerPrompt = 0.0,
                 keep_alive_s: float = 5.0, end_gap_s: float | None = None) -> None:
        self.model = model
        self.version = version
        self.prefix_caching = prefix_caching  # None: no /metrics (a server that reports no engine settings)
        self.root = root
        self.mode = mode
        self.delay_s = delay_s
        self.token_delay_s = token_delay_s
        self.lengths = lengths  # None: answers run to max_tokens (what tests of token counts rely on)
        self.planted = dict(planted or {})  # output position -> the id the model picks there
        self.eos = eos
        self.generation_eos = generation_eos  # the checkpoint's generation_config eos_token_id besides `eos`
        self.keep_alive_s = keep_alive_s
        self.end_gap_s = end_gap_s  # None: `data: [DONE]` and the body's end go in one write
        self.completions = 0
        self.connections = 0  # accepted TCP connections
        self.in_flight = 0
        self.max_in_flight = 0
        self.bodies: list[dict[str, Any]] = []
        self.ignored: list[str] = []  # request fields vLLM would ignore (it logs them)
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

    def generate(self, request: dict[str, Any]) -> Answer:
        """The greedy answer to a completion request (see the module docstring for the rules and their sources)."""
        prompt, max_tokens, min_tokens = request["prompt"], int(request["max_tokens"]), int(request["min_tokens"])
        ignore_eos = bool(request.get("ignore_eos"))
        extra_eos = [i for i in self.generation_eos if i != self.eos]
        stop_ids = set(request.get("stop_token_ids") or ()) | (set() if ignore_eos else set(extra_eos))
        masked = stop_ids | {self.eos, *extra_eos}  # SamplingParams.all_stop_token_ids
        babble = expected_ids(prompt, max_tokens)
        natural = natural_length(prompt, self.lengths)
        ids: list[int] = []
        for i in range(max_tokens):
            token = self.planted.get(i, self.eos if natural is not None and i >= natural else babble[i])
            if i < min_tokens:  # the logits processor masks every stop id: the model's next choice
                token = next(t for t in (token, babble[i], *range(3, 1003)) if t not in masked)
            ids.append(token)
            if len(ids) < min_tokens:
                continue
            if token == self.eos and not ignore_eos:
                return Answer(ids, "stop", None)
            if token in stop_ids:
                return Answer(ids, "stop", token)
        return Answer(ids, "length", None)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:  # uvicorn closes a connection idle for timeout_keep_alive
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.keep_alive_s)
                except TimeoutError:
                    return
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                close = headers.get("connection", "").lower() == "close"
                if not await self._route(method, path, body, writer, close) or close:
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, asyncio.CancelledError):
            return  # CancelledError: __exit__ (asyncio would log a cancelled connection handler as an error)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, status: int, payload: Any, close: bool = False) -> bool:
        data = b"" if payload is None else json.dumps(payload).encode()
        return await self._send(writer, status, "application/json", data, close)

    async def _send(self, writer: asyncio.StreamWriter, status: int, content_type: str, data: bytes,
                    close: bool = False) -> bool:
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}[status]
        writer.write(_head(f"{status} {reason}", f"content-type: {content_type}", f"content-length: {len(data)}",
                           close) + data)
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

    async def _route(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter, close: bool) -> bool:
        if method == "GET" and path == "/health":
            return await self._json(writer, 200, None, close)
        if method == "GET" and path == "/version":
            return await self._json(writer, 200, {"version": self.version}, close)
        if method == "GET" and path == "/metrics" and self.prefix_caching is not None:
            return await self._send(writer, 200, "text/plain; version=0.0.4", self._metrics(), close)
        if method == "GET" and path == "/v1/models":
            card = {"id": self.model, "object": "model", **({"root": self.root} if self.root else {})}
            return await self._json(writer, 200, {"object": "list", "data": [card]}, close)
        if method == "POST" and path == "/v1/completions":
            self.completions += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                return await self._complete(json.loads(body), writer, close)
            finally:
                self.in_flight -= 1
        return await self._json(writer, 404, {"error": {"message": f"no route {path}", "code": 404}}, close)

    async def _complete(self, request: dict[str, Any], writer: asyncio.StreamWriter, close: bool) -> bool:
        self.bodies.append(request)
        self.ignored += [key for key in request if key not in KNOWN_FIELDS]
        request = {"max_tokens": 16, "min_tokens": 0, **request}  # CompletionRequest's defaults
        if request["max_tokens"] < 1 or not 0 <= request["min_tokens"] <= request["max_tokens"]:
            message = f"need 1 <= max_tokens and 0 <= min_tokens <= max_tokens, got {request['min_tokens']}, " \
                      f"{request['max_tokens']}"
            return await self._json(writer, 400, {"error": {"message": message, "type": "BadRequestError",
                                                            "code": 400}}, close)
        mode, prompt = self.mode, request["prompt"]
        delay = self.delay_s(prompt) if callable(self.delay_s) else self.delay_s
        per_token = 0.05 if mode == "slow" else \
            self.token_delay_s(prompt) if callable(self.token_delay_s) else self.token_delay_s
        if delay:
            await asyncio.sleep(delay)
        if mode == "http500":
            return await self._json(writer, 500, {"error": {"message": "engine crashed", "code": 500}}, close)
        if mode == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        answer = self.generate(request)
        # ids only when asked: vLLM's return_token_ids, or trtllm-serve's detokenize: false (tests of that flavour)
        with_ids = bool(request.get("return_token_ids")) or request.get("detokenize") is False
        if request.get("stream"):
            return await self._stream(writer, close, prompt, answer, with_ids, per_token)
        ids = answer.ids
        await asyncio.sleep(3600 if mode == "stall" else per_token * (len(ids) - 1))
        choice = {"index": 0, "text": self._text(ids, answer), "logprobs": None,
                  "finish_reason": answer.finish_reason, "stop_reason": answer.stop_reason,
                  "token_ids": ids if with_ids else None, "prompt_token_ids": prompt if with_ids else None}
        result = {"object": "text_completion", "model": self.model, "choices": [choice],
                  "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(ids),
                            "total_tokens": len(prompt) + len(ids)}}
        return await self._json(writer, 200, result, close)

    async def _stream(self, writer: asyncio.StreamWriter, close: bool, prompt: list[int], answer: Answer,
                      with_ids: bool, per_token: float) -> bool:
        """The answer as SSE events, one id each (completion_stream_generator), in a chunked body."""
        mode, ids = self.mode, answer.ids
        writer.write(_head("200 OK", "content-type: text/event-stream; charset=utf-8", "transfer-encoding: chunked",
                           close))
        for i, token in enumerate(ids):
            last = i == len(ids) - 1
            if i and per_token:
                await asyncio.sleep(per_token)
            choice = {"index": 0, "text": self._text([token], answer if last else None), "logprobs": None,
                      "finish_reason": answer.finish_reason if last else None,
                      "stop_reason": answer.stop_reason if last else None,
                      "token_ids": [token] if with_ids else None,
                      "prompt_token_ids": prompt if with_ids and i == 0 else None}
            if mode == "bad_ids" and i in (3, 5):
                choice["token_ids"] = [2**40] if i == 3 else ["x"]  # not int32 token ids
            event = json.dumps({"object": "text_completion", "model": self.model, "choices": [choice]}).encode()
            if mode == "broken_sse" and i == 1:
                event = event[: len(event) // 2]
            if mode == "truncated" and last:
                break
            writer.write(_chunk(b"data: " + event + b"\n\n"))
            await writer.drain()
            if mode == "stall" and i == 0:
                await asyncio.sleep(3600)
        done = b"" if mode == "truncated" else _chunk(b"data: [DONE]\n\n")
        if self.end_gap_s is not None:  # the body's end (uvicorn's last, empty body message) in a later write
            writer.write(done)
            await writer.drain()
            await asyncio.sleep(self.end_gap_s)
            done = b""
        writer.write(done + b"0\r\n\r\n")
        await writer.drain()
        return True

    def _text(self, ids: list[int], answer: Answer | None) -> str:
        """One "x" per id; EOS (a special token, skip_special_tokens) and a stop-terminating id render no text."""
        stopped = answer is not None and answer.finish_reason == "stop"
        return "".join("" if t == self.eos or (stopped and i == len(ids) - 1) else "x" for i, t in enumerate(ids))


def _head(status: str, content_type: str, framing: str, close: bool) -> bytes:
    """A response head as uvicorn writes it (`connection: close` when the client asked for it)."""
    lines = [f"HTTP/1.1 {status}", "server: uvicorn", content_type, framing, *(["connection: close"] if close else [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _chunk(data: bytes) -> bytes:
    """One chunk of a chunked HTTP/1.1 body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"
