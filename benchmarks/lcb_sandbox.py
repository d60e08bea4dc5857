"""gpt-oss-120b scoring benchmark: LiveCodeBench in the sandbox vs a bare subprocess, and the whole log's scoring.

Builds a synthetic accuracy log with the reference's mix (30 AIME x8, 198 GPQA x5, N LiveCodeBench problems x3;
N = 1,055 by default = 4,395 samples) with harmony-formatted answers tokenized by a chunk tokenizer, and synthetic
LiveCodeBench-format problems (half standard input, half call-based, 4 tests each, two thirds of the answers right),
then measures in the same run:
  (a) the LiveCodeBench part scored with the sandbox (harness.sandbox) and with a bare subprocess
      (the same lcb_exec.py, plain ``subprocess.run([python, lcb_exec.py, job.json])`` in a temp dir), same
      parallelism -> overhead ratio; both must give the same verdicts;
  (b) the whole log's scoring time (harness.benchmarks.gpt_oss_120b.evaluate.score_accuracy_log, sandbox).

    python benchmarks/lcb_sandbox.py [--lcb-problems 1055] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from harness.benchmarks.gpt_oss_120b import evaluate as ev
from harness.benchmarks.gpt_oss_120b import livecodebench as lcb
from harness.benchmarks.gpt_oss_120b.extraction import Reference
from harness.sandbox import sandbox_workers

FINAL = "<|start|>assistant<|channel|>final<|message|>"


def problems(count: int, rng: random.Random) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A code_generation_lite-style jsonl of `count` problems, and per id (right code, wrong code)."""
    lines, codes = [], {}
    for i in range(count):
        qid = f"bench{i:05d}"
        call = i % 2 == 1
        cases = []
        for _ in range(4):
            a, b = rng.randrange(10**6), rng.randrange(10**6)
            if call:
                cases.append({"input": f"{a}\n{b}", "output": json.dumps([a + b, a * b]), "testtype": "functional"})
            else:
                cases.append({"input": f"{a} {b}\n", "output": f"{a + b}\n{a * b}\n", "testtype": "stdin"})
        right = ("class Solution:\n    def f(self, a, b):\n        return [a + b, a * b]" if call
                 else "a, b = map(int, input().split())\nprint(a + b)\nprint(a * b)")
        codes[qid] = (right, right.replace("a * b", "a * b + 1"))
        lines.append(json.dumps({"question_title": qid, "question_content": "", "platform": "leetcode" if call
                                 else "atcoder", "question_id": qid, "contest_id": "b",
                                 "contest_date": "2025-01-01T00:00:00", "starter_code": "", "difficulty": "easy",
                                 "public_test_cases": json.dumps(cases[:1]),
                                 "private_test_cases": json.dumps(cases[1:]),
                                 "metadata": json.dumps({"func_name": "f"} if call else {})}))
    path = Path(tempfile.mkdtemp(prefix="lcb-bench-")) / "bench.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, codes


def bare_runners(count: int) -> tuple[int, object]:
    def run(files: dict, argv: list, wall: float) -> SimpleNamespace:
        with tempfile.TemporaryDirectory() as folder:
            for name, data in files.items():
                Path(folder, name).write_bytes(data)
            try:
                done = subprocess.run([sys.executable, *argv], cwd=folder, capture_output=True, timeout=wall,
                                      stdin=subprocess.DEVNULL)
                return SimpleNamespace(stdout=done.stdout, stderr=done.stderr, returncode=done.returncode,
                                       timed_out=False)
            except subprocess.TimeoutExpired as err:
                return SimpleNamespace(stdout=err.stdout or b"", stderr=b"", returncode=None, timed_out=True)
    return count, lambda slot: run


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = ", ".join(f"{n} {metadata.version(n)}" for n in ("transformers", "tokenizers", "numpy"))
    bwrap = subprocess.run(["bwrap", "--version"], capture_output=True, text=True).stdout.strip()
    return (f"machine: {cpu}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
            f"Python {platform.python_version()}, {versions}, {bwrap}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lcb-problems", type=int, default=1055)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(machine())
    jsonl, codes = problems(args.lcb_problems, rng)
    loaded = lcb.load_problems(jsonl, codes)
    refs: list[Reference] = []
    texts: list[str] = []
    for _ in range(30):
        truth = str(rng.randrange(1000))
        refs += [Reference("aime25", truth)] * 8
        texts += [f"{FINAL}The answer is \\boxed{{{truth if rng.random() < 0.9 else 0}}}<|return|>" for _ in range(8)]
    for _ in range(198):
        truth = rng.choice("ABCD")
        refs += [Reference("gpqa_diamond", truth)] * 5
        texts += [f"{FINAL}**{truth if rng.random() < 0.8 else 'A'}**<|return|>" for _ in range(5)]
    for qid, (right, wrong) in codes.items():
        refs += [Reference("livecodebench_v6", qid)] * 3
        texts += [f"{FINAL}```python\n{right if rng.random() < 2 / 3 else wrong}\n```<|return|>" for _ in range(3)]
    workers = sandbox_workers(args.workers)
    print(f"log: {len(texts)} samples ({3 * len(codes)} LiveCodeBench), {workers} parallel runs")

    items = [(t.split("```python\n", 1)[1].rsplit("\n```", 1)[0], r.ground_truth)
             for t, r in zip(texts, refs, strict=True) if r.dataset == "livecodebench_v6"]
    start = time.perf_counter()
    boxed = lcb.evaluate_codes(items, loaded, workers=workers)
    sandbox_s = time.perf_counter() - start
    start = time.perf_counter()
    bare = lcb.evaluate_codes(items, loaded, runners=bare_runners(workers))
    bare_s = time.perf_counter() - start
    same = [a.passed for a in boxed] == [b.passed for b in bare]
    print(f"(a) LiveCodeBench {len(items)} answers: sandbox {sandbox_s:.1f} s, bare subprocess {bare_s:.1f} s, "
          f"overhead x{sandbox_s / bare_s:.2f}; passed {sum(a.passed for a in boxed)}; same verdicts: {same}")

    from tests.fake_support import chunk_tokenizer

    folder = Path(tempfile.mkdtemp(prefix="lcb-bench-tok-"))
    pieces = {p: None for t in texts for p in t.split(" ")}
    vocab = {p: i + 1 for i, p in enumerate(pieces)}
    tokenizer = chunk_tokenizer(folder / "tok", list(pieces))
    log = folder / "mlperf_log_accuracy.json"
    log.write_text(json.dumps([{"seq_id": i, "qsl_idx": i, "data": np.asarray(
        [vocab[p] for p in t.split(" ")], "<i4").tobytes().hex()} for i, t in enumerate(texts)]))
    start = time.perf_counter()
    report = ev.score_accuracy_log(log, refs, tokenizer, livecodebench=jsonl, workers=workers)
    whole_s = time.perf_counter() - start
    print(f"(b) whole log ({len(texts)} samples): {whole_s:.1f} s, exact_match {report.summary['exact_match']}, "
          f"(LiveCodeBench in (a): {sandbox_s:.1f} s)")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
