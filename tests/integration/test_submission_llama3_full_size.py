"""Acceptance of issue 22: full-size Llama 3.1 8B runs of v5.1, v6.0 and v6.1, packaged open and closed, pass the
official checker of the round.

For every round: `harness run` (the oracle fake: each sample answered with its reference's tokens; the round's own
LoadGen) makes, for llama3.1-8b on a synthetic 13,368-row `cnn_eval.json`, Offline and Server performance runs with
LoadGen's 600 s minimum duration, Offline and Server accuracy runs over every sample and TEST06 for both scenarios;
for llama3.1-8b-edge (v6.0 and v6.1) on a synthetic 5,000-row `sample_cnn_eval_5000.json`, SingleStream and Offline
performance and accuracy runs. `submission package` packages each benchmark twice, `--division open` (performance
and accuracy) and `--division closed` (with TEST06 where the benchmark needs it), with a system description of the
benchmark's system type; each tree must pass `submission check` and the round's official checker (Open or Closed
Results equal to the two scenario directories, NoResults=0, no ERROR line). Nothing is lifted or rewritten: the trees
hold LoadGen's own logs and the harness's own accuracy.txt.

The data sets are synthetic stand-ins for the MLCommons processed CNN/DailyMail files (which need a download): the
same schema (`input`, `tok_input`, `output`), the official row counts, and reference summaries of sentences built
from words that are one token of the embedded SmolLM2 tokenizer (which the runs score with), about 611 characters
and at most about 100 tokens each: the oracle's answers fit the reference's 128-token cap, ROUGE is 100, and GEN_LEN
(characters of all predictions) lands inside 0.9-1.1 x the checker's reference (8,167,644 for 13,368 samples,
3,051,113 for 5,000).

Round v5.1 is judged by the v5.1.1 tag's script (the v5.1 tag's cannot read a llama3.1-8b result; see
test_submission_llama3.py). Slow (about 15-20 minutes a round: the performance runs run side by side). The LoadGen of
a round other than the installed one comes from `.venv-loadgen-<round>` (`./scripts/install-loadgen-round.sh ROUND`);
without it, or without the mirror of mlcommons/inference, the round is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.benchmarks.registry import benchmark_facts
from submission.checker import run_official
from submission.rules import check_tree
from tests.integration.test_submission_full_size import (
    MEASUREMENTS,
    _check_closed_run,
    _fake_system,
    _no_loadgen,
    _readme_reasons,
    _start,
    round_python,
)
from tests.unit.submission import trees

pytestmark = pytest.mark.slow

DATACENTER, EDGE = "llama3.1-8b", "llama3.1-8b-edge"
ROUNDS = ("v5.1", "v6.0", "v6.1")
CHECKERS = {**trees.CHECKER_TAGS, "v5.1": "v5.1.1"}
SYSTEM_TYPES = {DATACENTER: "datacenter", EDGE: "edge"}
DATASET_FILES = {DATACENTER: "cnn_eval.json", EDGE: "sample_cnn_eval_5000.json"}
# Offline: 1.1 x 600 s x 20 QPS = 13,200 samples in the one query (LoadGen >= 5.0 pads it to a multiple of the
# performance sample count: 13,368 or 15,000), served one by one in 47 ms each (>= 620 s); Server: 50 QPS answered at
# once for LoadGen's 600 s; SingleStream: LoadGen sizes the run from the expected latency (loadgen.target_latency
# 40 ms: 1.1 x 600 s x 25 = 16,500 queries, which its equal issue pads to 25,000; measured), answered in 24 ms each
# (about 610 s). With LoadGen's default 10 ms it would ask for 125,000 queries.
OFFLINE_SETS = ("loadgen.target_qps=20", "backend.delay_ms=47")
PLANS: dict[str, dict[tuple[str, str], tuple[str, ...]]] = {
    DATACENTER: {("Offline", "performance"): OFFLINE_SETS, ("Server", "performance"): ("loadgen.target_qps=50",),
                 ("Offline", "accuracy"): (), ("Server", "accuracy"): ("loadgen.target_qps=1000",),
                 ("Offline", "TEST06"): (), ("Server", "TEST06"): ("loadgen.target_qps=50",)},
    EDGE: {("SingleStream", "performance"): ("backend.delay_ms=24", "loadgen.target_latency=40"),
           ("Offline", "performance"): OFFLINE_SETS,
           ("SingleStream", "accuracy"): (), ("Offline", "accuracy"): ()},
}
# One token each (with a leading space and capitalised) in the SmolLM2 tokenizer; checked by the test.
_WORDS = ("the", "government", "president", "statement", "according", "community", "international", "development",
          "important", "people", "country", "market", "report", "children", "business", "national", "political",
          "security", "question", "evidence", "research")


def cnn_dataset(path: Path, rows: int, seed: int) -> Path:
    """A JSON array of `rows` CNN/DailyMail-schema objects (input, tok_input ids, output), deterministic."""
    if path.is_file():
        return path
    rng = random.Random(seed)

    def summary() -> str:
        sentences: list[str] = []
        text, target = "", rng.randrange(505, 612)  # the last sentence overshoots by about 50 characters
        while len(text) < target:
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(6, 16)))
            sentences.append(words[0].upper() + words[1:] + ".")
            text = " ".join(sentences)
        return text

    records = []
    for index in range(rows):
        reference = summary()
        records.append({"input": f"Synthetic article {index}. {reference}",
                        "tok_input": [128000, *(rng.randrange(3, 49000) for _ in range(rng.randrange(32, 160)))],
                        "output": reference})
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(records))
    partial.rename(path)
    return path


def _runs(python: str, base: Path, round_name: str, datasets: dict[str, Path]) -> None:
    """Every run of the round: the performance runs side by side, the others one after the other meanwhile."""
    procs: dict[tuple[str, str, str], subprocess.Popen[str]] = {}
    for bench, plans in PLANS.items():
        if bench not in datasets:
            continue
        (base / bench).mkdir(parents=True, exist_ok=True)
        for (scenario, mode), sets in plans.items():
            if mode == "performance":
                procs[(bench, scenario, mode)] = _start(python, base / bench / f"{scenario}-{mode}", round_name,
                                                        datasets[bench], scenario, mode, _sets(bench, sets))
    for bench, plans in PLANS.items():
        for (scenario, mode), sets in plans.items():
            if bench in datasets and mode != "performance":
                procs[(bench, scenario, mode)] = proc = _start(python, base / bench / f"{scenario}-{mode}", round_name,
                                                               datasets[bench], scenario, mode, _sets(bench, sets))
                proc.wait(timeout=2400)
    for (bench, scenario, mode), proc in procs.items():
        rc = proc.wait(timeout=2400)
        assert rc == 0, (base / bench / f"{scenario}-{mode}.log").read_text()[-3000:]


def _sets(bench: str, sets: tuple[str, ...]) -> tuple[str, ...]:
    return (f"benchmark={bench}", "backend.behaviour=oracle", "generation.max_new_tokens=128", *sets)


def _package(python: str, runs: list[Path], tmp_path: Path, bench: str, round_name: str, division: str) -> Path:
    """`submission package --division <division> --allow-unsubmittable`; every reason it states is the fake's."""
    measurements = tmp_path / "measurements.json"
    measurements.write_text(json.dumps(MEASUREMENTS, indent=2))
    system = tmp_path / f"system-{bench}-{division}" / "fake-cpu.json"
    system.parent.mkdir(exist_ok=True)
    _fake_system(system, division)
    system.write_text(json.dumps({**json.loads(system.read_text()), "system_type": SYSTEM_TYPES[bench]}, indent=2))
    out = tmp_path / f"sub-{bench}-{division}"
    package = [python, "-m", "submission", "package", *map(str, runs), "--submitter", "MyOrg", "--system", str(system),
               "--output", str(out), "--round", round_name, "--division", division, "--measurements",
               str(measurements), "--allow-unsubmittable"]
    proc = subprocess.run(package, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(trees.REPO)},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if division == "closed":
        reasons = _readme_reasons(out)
        assert sorted(reasons) == sorted({key[0] for key in PLANS[bench]}), reasons
        assert all(lines for lines in reasons.values()), reasons
        assert all("backend fake (oracle) is a test fake" in line for lines in reasons.values() for line in lines)
    return out


def test_every_synthetic_summary_word_is_one_token() -> None:
    from harness.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(None)
    for word in _WORDS:
        for form in (f" {word}", word.capitalize()):
            assert len(tokenizer(form, add_special_tokens=False)["input_ids"]) == 1, form


@pytest.mark.timeout(5400)
@pytest.mark.parametrize("round_name", ROUNDS)
def test_full_size_llama3_runs_package_into_trees_the_official_checker_accepts(round_name: str,
                                                                               tmp_path: Path) -> None:
    python = round_python(round_name)
    if python is None:
        pytest.skip(_no_loadgen(round_name))
    try:
        checker = trees.export_checker(CHECKERS[round_name])
    except subprocess.CalledProcessError:
        pytest.skip(f"the mirror at {trees.MIRROR} has no tag {CHECKERS[round_name]} (fetch its tags)")
    if checker is None:
        pytest.skip(f"mirror of mlcommons/inference absent at {trees.MIRROR} (set MLPERF_INFERENCE_GIT)")
    benches = [b for b in (DATACENTER, EDGE) if round_name in benchmark_facts(b).rounds]
    datasets = {b: cnn_dataset(tmp_path / "data" / b / DATASET_FILES[b], benchmark_facts(b).dataset_samples,
                               seed=22 + i) for i, b in enumerate(benches)}
    base = tmp_path / "runs"
    _runs(python, base, round_name, datasets)
    for bench in benches:
        for scenario, mode in PLANS[bench]:
            _check_closed_run(base / bench / f"{scenario}-{mode}", round_name, scenario, mode, bench)

    for bench in benches:
        for division in ("open", "closed"):
            runs = [base / bench / f"{sc}-{mode}" for sc, mode in PLANS[bench]
                    if mode != "TEST06" or division == "closed"]
            out = _package(python, runs, tmp_path, bench, round_name, division)
            report = check_tree(out, round_name, expected_results=2)
            assert report.passed, [(c.name, c.path, c.detail) for c in report.failures]
            assert report.by_division == {division: 2}, report.by_division
            verdict = run_official(out, round_name, checker)
            summary = next((line for line in verdict.log.splitlines() if "SUMMARY" in line), "no SUMMARY line")
            print(f"\n{round_name} {bench} {division}: official checker {CHECKERS[round_name]}: {summary.strip()} | "
                  f"Closed Results={verdict.closed_results} Open Results={verdict.open_results} "
                  f"NoResults={verdict.no_results} errors={len(verdict.errors)} rc={verdict.returncode}")
            assert verdict.passed, verdict.log[-4000:]
            counts = (2, 0) if division == "closed" else (0, 2)
            assert (verdict.closed_results, verdict.open_results, verdict.no_results) == (*counts, 0)
            assert verdict.errors == [], verdict.errors
            keep = os.environ.get("HARNESS_KEEP_FULL_SIZE_TREE")
            if keep:
                shutil.copytree(out, Path(keep) / f"llama3-{round_name}-{bench}-{division}", dirs_exist_ok=True)
