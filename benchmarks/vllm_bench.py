"""vLLM in process vs the same vLLM behind the endpoint backend vs the hf backend, same prompts, same call.

Offline: one LoadGen performance run per backend on the same QSL (the first --samples smoke-set prompts, exactly
--tokens new tokens each: min_new_tokens = max_new_tokens), result_tokens_per_second, ratios against hf.
Server: falling target QPS (--qps, tried from the highest) per backend, each run --server-queries queries (LoadGen's
early stopping needs about 460 for a VALID run); the first QPS whose run is VALID with 0 LoadGen errors is the
highest VALID one ("none" when no QPS of the ladder is). A QPS above the backend's Offline samples/s is skipped
(its queue could only grow, and 470 queries would take hours on a slow backend). Offline runs --offline-repeats
times per backend (the median counts); the endpoint's Offline also runs with SSE streaming (backend.stream true)
beside its default plain JSON, the two interleaved run by run, so the faster Offline transport is measured.
Every run is its own `harness run` process, as in production. The in-process vllm runs and the endpoint runs
execute in the vLLM environment (.venv-vllm, PYTHONPATH = this checkout); the hf runs in this interpreter's
environment. The endpoint server (vLLM's OpenAI server on 127.0.0.1, same engine options: float32, eager,
max_num_seqs) is started once for all endpoint runs and stopped at the end. Run it under the heavy lock:

    flock /tmp/heavy.lock python benchmarks/vllm_bench.py [--samples 16] [--tokens 32] [--qps 4,2]
                            [--server-queries 470] [--backends vllm,endpoint,hf] [--offline-repeats 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.logs import parse_detail_log  # noqa: E402
from tests.integration.vllm_server import VLLM_PYTHON, VllmServer  # noqa: E402

ENGINE = ["--set", "backend.dtype=float32", "--set", "backend.enforce_eager=true",
          "--set", "backend.max_model_len=2048", "--set", "backend.kv_cache_gib=1", "--set", "backend.max_num_seqs=16"]


def run(python: str, out: Path, scenario: str, sets: list[str], samples: int, tokens: int,
        qps: float | None = None, queries: int | None = None) -> dict[str, object]:
    """One `harness run` in performance mode; the detail log's figures and validity."""
    argv = [python, "-m", "harness", "run", "--scenario", scenario, "--mode", "performance", "--no-progress",
            "--output-dir", str(out), "--set", f"dataset.max_samples={samples}",
            "--set", f"generation.max_new_tokens={tokens}", "--set", f"generation.min_new_tokens={tokens}", *sets]
    if qps is not None:
        argv += ["--set", f"loadgen.target_qps={qps}"]
    if queries is not None:
        argv += ["--set", f"loadgen.min_query_count={queries}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_NO_USAGE_STATS": "1"}
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=out.parent, env=env, text=True, capture_output=True, timeout=1800)
    wall = time.monotonic() - started
    if not (out / "mlperf_log_detail.txt").is_file():
        raise SystemExit(f"{out.name}: no detail log (exit {proc.returncode}): {proc.stderr[-1500:]}")
    log = parse_detail_log(out / "mlperf_log_detail.txt")
    values: dict[str, object] = {}
    for message in log.messages:
        values.setdefault(message.key, message.value)
    return {"validity": values.get("result_validity"), "errors": len(log.errors), "wall_s": round(wall, 1),
            "tokens_per_s": values.get("result_tokens_per_second"),
            "samples_per_s": values.get("result_samples_per_second"),
            "completed_qps": values.get("result_completed_samples_per_sec"),
            "ttft_p99_s": _seconds(values.get("result_first_token_99.00_percentile_latency_ns")),
            "tpot_p99_ms": _ms(values.get("result_time_per_output_token_99.00_percentile_ns"))}


def _seconds(ns: object) -> float | None:
    return round(float(ns) / 1e9, 3) if isinstance(ns, int | float) else None


def _ms(ns: object) -> float | None:
    return round(float(ns) / 1e6, 1) if isinstance(ns, int | float) else None


def offline_medians(python: str, variants: dict[Path, list[str]], args: argparse.Namespace) -> list[dict[str, object]]:
    """--offline-repeats Offline runs of each variant (a run-directory prefix and its --set list), interleaved
    (A, B, A, B, ...) so that a server warming up or a load arriving mid-call favours none of them; per variant
    the run with the median tokens/s, with every repeat's figure beside it."""
    repeats: dict[Path, list[dict[str, object]]] = {prefix: [] for prefix in variants}
    for i in range(args.offline_repeats):
        for prefix, sets in variants.items():
            repeats[prefix].append(run(python, prefix.with_name(f"{prefix.name}-{i}"), "Offline", sets,
                                       args.samples, args.tokens))
    medians = []
    for runs in repeats.values():
        ranked = sorted(runs, key=lambda r: float(r["tokens_per_s"] or 0))  # type: ignore[arg-type]
        medians.append({**ranked[len(ranked) // 2], "repeats_tokens_per_s": [r["tokens_per_s"] for r in runs]})
    return medians


def checkpoint() -> Path:
    """The converted embedded checkpoint (the same files the in-process runs load)."""
    from harness.checkpoint import converted_checkpoint

    return converted_checkpoint()


def wait_healthy(url: str, server: VllmServer, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"vLLM server not healthy after {timeout_s} s: {server.tail()}")


def server_ladder(python: str, sets: list[str], prefix: Path, ladder: list[float], args: argparse.Namespace,
                  capacity: object) -> list[dict[str, object]]:
    """Server runs from the highest QPS down, until one is VALID with 0 errors."""
    results: list[dict[str, object]] = []
    for qps in ladder:
        if isinstance(capacity, int | float) and qps > capacity:  # the queue could only grow: INVALID
            results.append({"qps": qps, "validity": f"skipped: above Offline {capacity:.2f} samples/s", "errors": 0})
            continue
        result = run(python, prefix.with_name(f"{prefix.name}-server-{qps:g}"), "Server", sets, args.samples,
                     args.tokens, qps, args.server_queries)
        results.append({"qps": qps, **result})
        if result["validity"] == "VALID" and not result["errors"]:
            break
    return results


def print_table(results: dict[str, dict[str, object]], args: argparse.Namespace, ladder: list[float],
                out: Path) -> None:
    """The Markdown table for docs/benchmarks.md, and the endpoint's Offline transport comparison."""
    base = results.get("hf", {}).get("offline", {}).get("tokens_per_s") if "hf" in results else None
    print(f"\nOffline, {args.samples} samples x {args.tokens} tokens; Server ladder {ladder} QPS, "
          f"{args.server_queries} queries each; runs in {out}")
    print("| backend | Offline tokens/s | vs hf | Offline LoadGen | highest VALID Server QPS "
          "| TTFT p99 / TPOT p99 there |")
    print("|---|---|---|---|---|---|")
    for name, entry in results.items():
        offline = entry["offline"]
        assert isinstance(offline, dict)
        tps = offline["tokens_per_s"]
        ratio = f"{tps / base:.2f}x" if base and isinstance(tps, int | float) else "–"
        best = entry["highest_valid_qps"]
        at = next((r for r in entry["server"] if r["qps"] == best), None)  # type: ignore[attr-defined]
        where = f"{at['ttft_p99_s']} s / {at['tpot_p99_ms']} ms" if at else "–"
        print(f"| {name} | {tps:.1f} | {ratio} | {offline['validity']}, {offline['errors']} errors | "
              f"{best if best is not None else 'none'} | {where} |")
    streamed = results.get("endpoint", {}).get("offline_streamed")
    if isinstance(streamed, dict):
        plain = results["endpoint"]["offline"]
        assert isinstance(plain, dict)
        print(f"\nendpoint Offline: plain JSON {plain['repeats_tokens_per_s']} tokens/s, SSE "
              f"{streamed['repeats_tokens_per_s']} tokens/s; median SSE / plain = "
              f"{float(streamed['tokens_per_s']) / float(plain['tokens_per_s']):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--qps", default="4,2")
    parser.add_argument("--server-queries", type=int, default=470)
    parser.add_argument("--backends", default="vllm,endpoint,hf")
    parser.add_argument("--offline-repeats", type=int, default=1, help="Offline runs per backend; the median counts")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="vllm-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    backends = args.backends.split(",")
    ladder = sorted((float(q) for q in args.qps.split(",")), reverse=True)
    server: VllmServer | None = None
    results: dict[str, dict[str, object]] = {}
    try:
        setups = {
            "vllm": (str(VLLM_PYTHON), ["--set", "backend.kind=vllm", *ENGINE]),
            "endpoint": (str(VLLM_PYTHON), ["--set", "backend.kind=endpoint",
                                            "--set", f"backend.urls=[\"{server.url if server else ''}\"]",
                                            "--set", "backend.concurrency=16"]),
            "hf": (sys.executable, ["--set", "backend.kind=hf", "--set", "backend.dtype=float32",
                                    "--set", "backend.max_batch_size=16"]),
        }
        for name in backends:
            if name == "endpoint":  # started only now: an idle server must not share the cores with other runs
                server = VllmServer(checkpoint(), "smollm2", out / "server.log")
                wait_healthy(server.url, server)
                setups["endpoint"][1][3] = f"backend.urls=[\"{server.url}\"]"
            python, sets = setups[name]
            variants = {out / f"{name}-offline": sets}
            if name == "endpoint":  # backend.stream auto sends plain JSON in Offline; the SSE alternative, measured
                variants[out / f"{name}-offline-streamed"] = [*sets, "--set", "backend.stream=true"]
            medians = offline_medians(python, variants, args)
            entry: dict[str, object] = {"offline": medians[0]}
            if name == "endpoint":
                entry["offline_streamed"] = medians[1]
            ladder_results = server_ladder(python, sets, out / name, ladder, args,
                                           entry["offline"]["samples_per_s"])  # type: ignore[index]
            valid = [r["qps"] for r in ladder_results if r["validity"] == "VALID" and not r["errors"]]
            entry.update(server=ladder_results, highest_valid_qps=max(valid) if valid else None)
            results[name] = entry
            print(json.dumps({name: entry}), flush=True)
            if server is not None and name == "endpoint":
                server.stop()
    finally:
        if server is not None:
            server.stop()
    print_table(results, args, ladder, out)
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
