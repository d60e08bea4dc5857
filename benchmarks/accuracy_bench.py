"""Accuracy-scoring benchmark: our scorer end to end on a synthetic full-size log vs the plain reference way.

--benchmark llama2-70b-99.9 (default): a synthetic OpenOrca-like set of 24,576 samples (references of about
300 words; predictions reuse or edit about 75 % of the reference sentences), tokenized with the embedded
SmolLM2 tokenizer into a real int32 mlperf_log_accuracy.json, then times:
  ours       harness.benchmarks.llama2_70b.evaluate.score_accuracy_log + write_accuracy_outputs on all samples
             (log parsing, decoding, sentence splitting, ROUGE, accuracy.txt/json);
  reference  the reference algorithm done plainly (batch_decode, nltk Punkt, rouge_score, one process)
             on a subset, extrapolated to the full set.
It checks that both give the same per-sample scores on the subset and prints the extrapolated ratio.

--benchmark llama3.1-8b: a synthetic CNN/DailyMail-like set of 13,368 samples (highlights of 3-4 sentences,
about 600-character summaries sharing some of their sentences, as GEN_LEN 8,167,644 / 13,368 implies), then
times ours (harness.benchmarks.llama3_1_8b.evaluate) and the plain reference way of evaluation.py on ALL the
samples in the same run (no extrapolation), checks that both print the same numbers, and prints the ratio.

    python benchmarks/accuracy_bench.py [--samples 24576] [--subset 256]
    python benchmarks/accuracy_bench.py --benchmark llama3.1-8b [--samples 13368]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.benchmarks.llama2_70b import evaluate as llama2_evaluate
from harness.benchmarks.llama3_1_8b import evaluate as llama3_evaluate
from harness.benchmarks.scoring.rouge import ROUGE_TYPES
from harness.benchmarks.scoring.sentences import english_parameters
from harness.tokenizer import load_tokenizer

_PROSE = ("the of and to in is it that was for on are with as his they be at one have this from or had "
         "by word but what some we can out other were all there when up use your how said an each she "
         "which do their time if will way about many then them write would like so these her long make "
         "thing see him two has look more day could go come did number sound no most people my over know "
         "water than call first who may down side been now find running jumped generalization relational "
         "organizations computing studies universities quickly analysis 3.14 1,000 2024 Dr. e.g. café")
WORDS = _PROSE.split()
LLAMA3_SAMPLES = 13368


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(6, 24))]
    return words[0].capitalize() + " " + " ".join(words[1:]) + rng.choice((".", ".", ".", "?", "!"))


def synthetic_pairs(count: int, seed: int = 2026) -> tuple[list[str], list[str]]:
    """References of about 300 words; predictions reusing or editing about 75 % of their sentences."""
    rng = random.Random(seed)
    references, predictions = [], []
    for _ in range(count):
        sentences = [_sentence(rng) for _ in range(rng.randint(14, 26))]
        kept = [s if rng.random() < 0.75 else _sentence(rng) for s in sentences]
        references.append(" ".join(sentences))
        predictions.append(" ".join(kept + ([_sentence(rng)] if rng.random() < 0.5 else [])))
    return references, predictions


def write_log(path: Path, token_ids: list[list[int]]) -> None:
    """A LoadGen-style accuracy log with int32 buffers."""
    entries = [{"seq_id": i, "qsl_idx": i, "data": np.asarray(ids, dtype="<i4").tobytes().hex().upper()}
               for i, ids in enumerate(token_ids)]
    path.write_text(json.dumps(entries))


def reference_way(tokenizer, log: Path, references: list[str], subset: int) -> list[float]:
    """The reference algorithm, plainly, on the first `subset` entries; returns rouge1 F per sample."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    from rouge_score import rouge_scorer

    splitter = PunktSentenceTokenizer(english_parameters())
    entries = json.loads(log.read_text())[:subset]
    preds = [np.frombuffer(bytes.fromhex(e["data"]), np.int32) for e in entries]
    texts = tokenizer.batch_decode(preds, skip_special_tokens=True)
    post = ["\n".join(splitter.tokenize(t.strip())) for t in texts]
    targets = ["\n".join(splitter.tokenize(references[e["qsl_idx"]].strip())) for e in entries]
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    return [scorer.score(t, p)["rouge1"].fmeasure for t, p in zip(targets, post, strict=True)]


def cnn_pairs(count: int, seed: int = 2026) -> tuple[list[str], list[str]]:
    """Highlights of 3-4 sentences; summaries of about 600 characters reusing about half of their sentences."""
    rng = random.Random(seed)
    references, predictions = [], []
    for _ in range(count):
        highlights = [_sentence(rng) for _ in range(rng.randint(3, 4))]
        summary: list[str] = []
        while sum(len(x) + 1 for x in summary) < rng.randint(450, 700):
            summary.append(rng.choice(highlights) if rng.random() < 0.5 else _sentence(rng))
        references.append(" ".join(highlights))
        predictions.append(" ".join(summary))
    return references, predictions


def llama3_reference_way(tokenizer: Any, log: Path, references: list[str]) -> dict[str, Any]:
    """evaluation.py's algorithm done plainly on every entry (one process); returns what it prints."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer
    from rouge_score import rouge_scorer

    splitter = PunktSentenceTokenizer(english_parameters())
    seen: set[int] = set()
    entries = []
    for entry in json.loads(log.read_text()):
        if entry["qsl_idx"] not in seen:
            seen.add(entry["qsl_idx"])
            entries.append(entry)
    ids = [np.frombuffer(bytes.fromhex(e["data"]), np.int32) for e in entries]
    texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
    preds = ["\n".join(splitter.tokenize(t.strip())) for t in texts]
    targets = ["\n".join(splitter.tokenize(references[e["qsl_idx"]].strip())) for e in entries]
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    scores = [scorer.score(t, p) for t, p in zip(targets, preds, strict=True)]
    result: dict[str, Any] = {k: f"{round(np.mean([s[k].fmeasure for s in scores]) * 100, 4)}" for k in ROUGE_TYPES}
    result["gen_len"] = int(np.sum([len(p) for p in preds]))
    result["gen_num"] = len(preds)
    return result


def llama3_bench(tokenizer: Any, samples: int) -> None:
    """Llama 3.1 8B: ours and the plain reference way, both on all samples in this run."""
    references, predictions = cnn_pairs(samples)
    eos = int(tokenizer.eos_token_id)
    token_ids = [[*ids, eos] for ids in tokenizer(predictions, add_special_tokens=False)["input_ids"]]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "mlperf_log_accuracy.json"
        write_log(log, token_ids)
        print(f"synthetic set: {samples} samples, {sum(map(len, references)) / samples:.0f} characters per "
              f"reference, {sum(map(len, predictions)) / samples:.0f} per summary, "
              f"{sum(map(len, token_ids)) / samples:.0f} tokens per answer, log {log.stat().st_size >> 20} MiB")

        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        report = llama3_evaluate.score_accuracy_log(log, references, tokenizer, dtype="int32",
                                                    benchmark="llama3.1-8b")
        llama3_evaluate.write_accuracy_outputs(report, Path(tmp), overwrite=True)
        ours = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        printed = llama3_evaluate.printed(report.summary)
        print(f"ours: {samples} samples end to end in {ours:.1f} s wall, {cpu:.1f} CPU-s in all processes "
              f"({report.engine} ROUGE) -> {printed}")

        start = time.perf_counter()
        expected = llama3_reference_way(tokenizer, log, references)
        reference = time.perf_counter() - start
        print(f"reference way: all {samples} samples in {reference:.1f} s (one process) -> {expected}; "
              f"same printed numbers: {expected == printed}")
        print(f"ratio (reference / ours): {reference / ours:.1f}x")


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the scoring workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--benchmark", choices=("llama2-70b-99.9", "llama3.1-8b"), default="llama2-70b-99.9")
    parser.add_argument("--samples", type=int, default=None, help="default: the benchmark's full set")
    parser.add_argument("--subset", type=int, default=256, help="llama2 only: reference subset to extrapolate from")
    args = parser.parse_args()

    start = time.perf_counter()
    tokenizer = load_tokenizer(None)
    print(f"tokenizer (embedded SmolLM2) loaded in {time.perf_counter() - start:.1f} s")
    if args.benchmark == "llama3.1-8b":
        llama3_bench(tokenizer, args.samples or LLAMA3_SAMPLES)
    else:
        llama2_bench(tokenizer, args.samples or 24576, args.subset)


def llama2_bench(tokenizer: Any, samples: int, subset: int) -> None:
    """Llama 2 70B: ours on all samples, the reference way on a subset, extrapolated."""
    references, predictions = synthetic_pairs(samples)
    eos = int(tokenizer.eos_token_id)
    token_ids = [[*ids, eos] for ids in tokenizer(predictions, add_special_tokens=False)["input_ids"]]
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "mlperf_log_accuracy.json"
        write_log(log, token_ids)
        words = sum(len(r.split()) for r in references) / len(references)
        print(f"synthetic set: {samples} samples, {words:.0f} words per reference, "
              f"{sum(map(len, token_ids)) / len(token_ids):.0f} tokens per answer, log {log.stat().st_size >> 20} MiB")

        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        report = llama2_evaluate.score_accuracy_log(log, references, tokenizer, dtype="int32")
        llama2_evaluate.write_accuracy_outputs(report, Path(tmp), overwrite=True)
        ours = time.perf_counter() - start
        cpu = _cpu_seconds() - cpu_start
        print(f"ours: {samples} samples end to end in {ours:.1f} s wall, {cpu:.1f} CPU-s in all processes "
              f"({report.engine} ROUGE) -> {report.summary}")

        start = time.perf_counter()
        expected = reference_way(tokenizer, log, references, subset)
        reference = (time.perf_counter() - start) * samples / subset
        same = expected == [s.rouge1 for s in report.samples[: subset]]
        print(f"reference way: {subset} samples in {reference * subset / samples:.1f} s, "
              f"extrapolated {reference:.0f} s for {samples}; same rouge1 per sample: {same}")
        print(f"ratio (reference / ours): {reference / ours:.0f}x")


if __name__ == "__main__":
    main()
