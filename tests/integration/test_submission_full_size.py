"""Acceptance of issue 17: full-size runs of each round, packaged, pass that round's official checker.

For every round: `harness run` (fake backend, the round's own LoadGen) makes four full-size runs: Offline
and Server performance with LoadGen's 600 s minimum duration and the 24,576 loaded samples, Offline and
Server accuracy over all 24,576 samples; `submission package` packages them, and the official checker of
the round (its tag; master for v6.0) must say `submission looks OK` with `Open Results` equal to the two
scenario directories and `NoResults=0`. Nothing is lifted or rewritten: the trees hold LoadGen's own logs.

The data set is a synthetic stand-in for the MLCommons OpenOrca pickle (which needs a download): the same
schema (`tok_input`, `output`) and 24,576 rows, written by full_dataset() below. For v4.1 the test first
asks for the Offline run that LoadGen 4.1 cannot do (equal-issue padding, mlcommons/inference #2031) and
requires `harness run` to refuse it before LoadGen starts, naming the LoadGen problem; the packaged Offline
run then uses loadgen.target_qps=50 (33,000 samples in the one query), which LoadGen 4.1 runs normally.

Closed (issue 21), for v5.1, v6.0 and v6.1: the same four runs with the oracle fake (`backend.behaviour=oracle`:
each sample answered with its reference's tokens) on a synthetic QSL whose references are about 290 tokens, so
that the scored accuracy meets the targets (ROUGE 100, tokens per sample inside the window), plus TEST06 for both
scenarios (`compliance run TEST06`); `submission package --division closed` packages them and the round's
official checker must count `Closed Results` equal to the two scenario directories, with no ERROR line.

Slow (each round takes about 18-20 minutes: the performance runs run side by side; run them one round at a time
under the heavy lock). The LoadGen of a round other than the installed one comes from the round's environment
`.venv-loadgen-<round>` in the repository (`./scripts/install-loadgen-round.sh ROUND`), or, as a fallback,
`$MLPERF_LOADGEN_VENVS/venv-<round>/bin/python`; without either the round is skipped with the install command.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.benchmarks.registry import benchmark_facts
from harness.rounds import round_spec
from submission.checker import run_official
from submission.rules import check_tree
from tests.unit.submission import trees

pytestmark = pytest.mark.slow

ROUNDS = ("v4.0", "v4.1", "v5.0", "v5.1", "v6.0")
CLOSED_ROUNDS = ("v5.1", "v6.0", "v6.1")
FULL = 24576
VENVS = os.environ.get("MLPERF_LOADGEN_VENVS")  # fallback: <dir>/venv-<round>, made by hand
# Offline: 1.1 x 600 s x 50 QPS = 33,000 samples in the one query (49,152 with LoadGen >= 5.0, whose equal
# issue pads it; measured), served one by one in 18.5 ms each (>= 610 s: LoadGen's min_duration is met);
# Server: 50 QPS answered at once for LoadGen's 600 s (equal issue pads it to 49,152 queries, about 983 s).
OFFLINE_SETS = ("loadgen.target_qps=50", "backend.delay_ms=18.5")
SERVER_SETS = ("loadgen.target_qps=50",)
# Server accuracy issues every sample once at target_qps: mlperf.conf's 1.0 would take 24,576 s.
SERVER_ACCURACY_SETS = ("loadgen.target_qps=1000",)
# Closed: every run answers with the reference tokens. The embedded default model (whose tokenizer the runs use)
# caps max_new_tokens at 64; closed fixes the reference's 1024, so it is set (no deviation is recorded then).
ORACLE_SETS = ("backend.behaviour=oracle", "generation.max_new_tokens=1024")
# TEST06 in Server: about 100 queries at 50 QPS.
TEST06_SERVER_SETS = ("loadgen.target_qps=50",)
MEASUREMENTS = {"starting_weights_filename": "none: the harness test fake answers with the reference outputs",
                "weight_transformations": "none", "weight_data_types": "none (the test fake loads no weights)"}
_WORDS = ("the", "a", "model", "answer", "question", "data", "result", "value", "time", "system", "reason",
          "step", "first", "then")


def full_dataset(path: Path) -> Path:
    """A 24,576-row DataFrame pickle with the OpenOrca schema (tok_input ids, output text), deterministic."""
    import pandas as pd

    if path.is_file():
        return path
    rng = random.Random(17)
    words = ("the", "a", "model", "answer", "question", "data", "result", "value", "time", "system", "reason",
             "step", "first", "then")
    tok_input = [[1, *(rng.randrange(3, 32000) for _ in range(rng.randrange(16, 160)))] for _ in range(FULL)]
    output = [" ".join(rng.choice(words) for _ in range(rng.randrange(20, 80))) + "." for _ in range(FULL)]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pd.DataFrame({"tok_input": tok_input, "output": output}).to_pickle(partial)
    partial.rename(path)
    return path


def closed_dataset(path: Path) -> Path:
    """A 24,576-row OpenOrca-schema pickle whose reference outputs are sentences of about 290 tokens.

    Each word of _WORDS is one token of the embedded SmolLM2 tokenizer (which the runs score with), so an
    answer of 255-294 words in sentences of 8-23 words is about 290 tokens with its EOS: the oracle fake's
    tokens per sample land inside llama2-70b-99.9's window (294.45 x [0.9, 1.1]) and its ROUGE is 100.
    """
    import pandas as pd

    if path.is_file():
        return path
    rng = random.Random(21)

    def answer() -> str:
        sentences: list[str] = []
        words, target = 0, rng.randrange(255, 295)
        while words < target:
            count = min(rng.randrange(8, 24), target - words)
            text = " ".join(rng.choice(_WORDS) for _ in range(count))
            sentences.append(text[0].upper() + text[1:] + ".")
            words += count
        return " ".join(sentences)

    tok_input = [[1, *(rng.randrange(3, 32000) for _ in range(rng.randrange(16, 160)))] for _ in range(FULL)]
    output = [answer() for _ in range(FULL)]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pd.DataFrame({"tok_input": tok_input, "output": output}).to_pickle(partial)
    partial.rename(path)
    return path


def round_python(round_name: str) -> str | None:
    """A Python whose mlcommons-loadgen produces this round (this one's, the round's .venv-loadgen-<round>, or
    $MLPERF_LOADGEN_VENVS/venv-<round>), or None."""
    spec = round_spec(round_name)
    candidates = [sys.executable, str(trees.REPO / f".venv-loadgen-{round_name}" / "bin" / "python")]
    if VENVS:
        candidates.append(str(Path(VENVS) / f"venv-{round_name}" / "bin" / "python"))
    for python in candidates:
        if not Path(python).is_file():
            continue
        probe = subprocess.run([python, "-c", "import importlib.metadata as m; print(m.version('mlcommons-loadgen'))"],
                               capture_output=True, text=True, timeout=120)
        if probe.returncode == 0 and spec.loadgen_matches(probe.stdout.strip()):
            return python
    return None


def _no_loadgen(round_name: str) -> str:
    """The skip reason of a round without its LoadGen, with the install command."""
    return (f"no LoadGen for {round_name} (looked at this Python, .venv-loadgen-{round_name}"
            f"{f' and {VENVS}/venv-{round_name}' if VENVS else ''}): run ./scripts/install-loadgen-round.sh "
            f"{round_name} ({round_spec(round_name).loadgen_pip})")


def _start(python: str, out: Path, round_name: str, dataset: Path, scenario: str, mode: str,
           sets: tuple[str, ...]) -> subprocess.Popen[str]:
    """`harness run` (mode performance or accuracy) or, for mode "TEST06", `compliance run TEST06`, in the
    background; its output goes to <out>.log beside the run directory."""
    command = ["compliance", "run", "TEST06"] if mode == "TEST06" else ["harness", "run", "--mode", mode]
    args = [python, "-m", *command, "--scenario", scenario, "--output-dir", out.name,
            "--no-progress", "--set", f"round={round_name}", "--set", "backend.kind=fake",
            "--set", f"dataset.path={dataset}"]
    for item in sets:
        args += ["--set", item]
    env = {**os.environ, "PYTHONPATH": str(trees.REPO)}
    log = (out.parent / f"{out.name}.log").open("w")
    return subprocess.Popen(args, cwd=out.parent, env=env, text=True, stdout=log, stderr=subprocess.STDOUT)


def _fake_system(target: Path, division: str = "open") -> Path:
    """The worked example system description, made to describe what ran: one process of the test fake."""
    system = json.loads(trees.SYSTEM.read_text())
    system.update(framework="fake (harness test backend)", number_of_nodes=1, accelerators_per_node=1,
                  division=division)
    target.write_text(json.dumps(system, indent=2))
    return target


def _refuses_v41_offline(python: str, base: Path, dataset: Path) -> None:
    out = base / "refused-Offline-performance"
    started = time.monotonic()
    proc = _start(python, out, "v4.1", dataset, "Offline", "performance", ())
    assert proc.wait(timeout=600) == 2
    text = (base / f"{out.name}.log").read_text()
    assert "LoadGen 4.1 would generate 24576 queries of 24576 samples" in text, text[-2000:]
    assert "#2031" in text and "loadgen.target_qps above" in text, text[-2000:]
    assert not (out / "mlperf_log_detail.txt").exists(), "LoadGen started although the run was refused"
    assert time.monotonic() - started < 300


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("round_name", ROUNDS)
def test_full_size_runs_package_into_a_tree_the_official_checker_accepts(round_name: str, tmp_path: Path) -> None:
    python = round_python(round_name)
    if python is None:
        pytest.skip(_no_loadgen(round_name))
    checker = trees.export_checker(trees.CHECKER_TAGS[round_name])
    if checker is None:
        pytest.skip(f"mirror of mlcommons/inference absent at {trees.MIRROR} (set MLPERF_INFERENCE_GIT)")
    dataset = full_dataset(tmp_path / "openorca-synthetic-24576.pkl")
    base = tmp_path / "runs"
    base.mkdir()
    if round_name == "v4.1":
        _refuses_v41_offline(python, base, dataset)
    plans = {("Offline", "performance"): OFFLINE_SETS, ("Offline", "accuracy"): (),
             ("Server", "performance"): SERVER_SETS, ("Server", "accuracy"): SERVER_ACCURACY_SETS}
    # The two performance runs (mostly waiting on LoadGen's clock) side by side; the accuracy runs one after
    # the other meanwhile, so that at most one CPU-bound run competes with the Server run's latencies.
    procs = {key: _start(python, base / f"{key[0]}-{key[1]}", round_name, dataset, *key, sets)
             for key, sets in plans.items() if key[1] == "performance"}
    for key, sets in plans.items():
        if key[1] == "accuracy":
            procs[key] = _start(python, base / f"{key[0]}-{key[1]}", round_name, dataset, *key, sets)
            procs[key].wait(timeout=1800)
    for key, proc in procs.items():
        rc = proc.wait(timeout=1800)
        assert rc == 0, (base / f"{key[0]}-{key[1]}.log").read_text()[-3000:]
    for (scenario, mode) in plans:
        manifest = json.loads((base / f"{scenario}-{mode}" / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["sample_count"] == FULL
        assert manifest["round"] == round_name
        assert [r["code"] for r in manifest["not_submittable_reasons"]] == ["test-fake"], manifest[
            "not_submittable_reasons"]
        if mode == "performance":
            assert manifest["result"]["result_validity"] == "VALID", manifest["result"]

    out = tmp_path / "sub"
    package = [python, "-m", "submission", "package", *(str(base / f"{sc}-{mode}") for sc, mode in plans),
               "--submitter", "MyOrg", "--system", str(_fake_system(tmp_path / "fake-cpu.json")),
               "--output", str(out), "--round", round_name, "--allow-unsubmittable"]
    packaged = subprocess.run(package, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(trees.REPO)},
                              capture_output=True, text=True, timeout=1200)
    assert packaged.returncode == 0, packaged.stderr[-3000:]
    report = check_tree(out, round_name, expected_results=2)
    assert report.passed, [(c.name, c.path, c.detail) for c in report.failures]
    verdict = run_official(out, round_name, checker)
    print(f"\n{round_name}: official checker {trees.CHECKER_TAGS[round_name]}: summary_ok={verdict.summary_ok} "
          f"Open Results={verdict.open_results} NoResults={verdict.no_results} rc={verdict.returncode}")
    assert verdict.passed, verdict.log[-4000:]
    assert (verdict.open_results, verdict.no_results) == (2, 0)
    keep = os.environ.get("HARNESS_KEEP_FULL_SIZE_TREE")
    if keep:
        shutil.copytree(out, Path(keep) / round_name, dirs_exist_ok=True)


def _readme_reasons(tree: Path) -> dict[str, list[str]]:
    """Per scenario README.md (under results/ from v6.0, measurements/ before): the bullets of its "NOT A VALID
    SUBMISSION" section."""
    found = {}
    readmes = [r for base in ("results", "measurements") for r in tree.glob(f"closed/*/{base}/*/*/*/README.md")]
    for readme in sorted(readmes):
        text = readme.read_text()
        section = text.split("## NOT A VALID SUBMISSION", 1)[1].split("\n## ", 1)[0] if (
            "## NOT A VALID SUBMISSION" in text) else ""
        found[readme.parent.name] = [line[2:] for line in section.splitlines() if line.startswith("- ")]
    return found


CLOSED_PLANS = {("Offline", "performance"): OFFLINE_SETS, ("Server", "performance"): SERVER_SETS,
                ("Offline", "accuracy"): (), ("Server", "accuracy"): SERVER_ACCURACY_SETS,
                ("Offline", "TEST06"): (), ("Server", "TEST06"): TEST06_SERVER_SETS}


def _closed_runs(python: str, base: Path, round_name: str, dataset: Path) -> None:
    """The six runs of a closed tree: the two performance runs side by side, the accuracy and TEST06 runs one
    after the other meanwhile (so at most one CPU-bound run competes with the Server run's latencies)."""
    procs: dict[tuple[str, str], subprocess.Popen[str]] = {}
    for key, sets in CLOSED_PLANS.items():
        procs[key] = _start(python, base / f"{key[0]}-{key[1]}", round_name, dataset, *key, (*ORACLE_SETS, *sets))
        if key[1] != "performance":
            procs[key].wait(timeout=1800)
    for key, proc in procs.items():
        rc = proc.wait(timeout=1800)
        assert rc == 0, (base / f"{key[0]}-{key[1]}.log").read_text()[-3000:]


def _check_closed_run(run_dir: Path, round_name: str, scenario: str, mode: str,
                      benchmark: str = "llama2-70b-99.9") -> None:
    """A finished run as a closed result needs it: full size, no deviation, only the fake's reasons; VALID
    600 s performance, accuracy over every sample meeting every target of the round (ROUGE 100: the oracle's
    answers are the references), TEST06 passing."""
    facts = benchmark_facts(benchmark, round_name)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["sample_count"] == facts.dataset_samples
    assert (manifest["round"], manifest["scenario"], manifest["benchmark"]) == (round_name, scenario, benchmark)
    # The fake records the embedded model it names (provenance leaves the fake's model: line out); nothing else.
    assert [d for d in manifest["deviations"] if not d.startswith("model:")] == [], manifest["deviations"]
    codes = [r["code"] for r in manifest["not_submittable_reasons"]]
    assert codes == (["test-fake", "compliance-run"] if mode == "TEST06" else ["test-fake"]), codes
    result = manifest["result"]
    if mode == "performance":
        assert result["result_validity"] == "VALID", result
        assert result["effective_min_duration_ms"] >= 600000, result
    elif mode == "accuracy":
        assert result["accuracy_passed"] is True and result["accuracy_partial"] is False, result
        values = result["accuracy"]
        assert values["gen_num"] == facts.accuracy_samples, values
        assert all(values[key] == 100.0 for key in ("rouge1", "rouge2", "rougeL", "rougeLsum")), values
        for metric in facts.metrics:
            assert values[metric.key] >= metric.lower, (metric, values)
            assert metric.upper is None or values[metric.key] <= metric.upper, (metric, values)
    else:
        assert manifest["compliance_test"] == "TEST06" and manifest["details"]["test06"]["passed"] is True


def _package_closed(python: str, base: Path, tmp_path: Path, round_name: str) -> Path:
    """`submission package --division closed --allow-unsubmittable`; every reason it states is the fake's."""
    measurements = tmp_path / "measurements.json"
    measurements.write_text(json.dumps(MEASUREMENTS, indent=2))
    out = tmp_path / "sub"
    package = [python, "-m", "submission", "package", *(str(base / f"{sc}-{mode}") for sc, mode in CLOSED_PLANS),
               "--submitter", "MyOrg", "--system", str(_fake_system(tmp_path / "fake-cpu.json", "closed")),
               "--output", str(out), "--round", round_name, "--division", "closed",
               "--measurements", str(measurements), "--allow-unsubmittable"]
    proc = subprocess.run(package, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(trees.REPO)},
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Each README lists its scenario's reasons; together they are all the packager counted, each the fake's.
    reasons = _readme_reasons(out)
    assert sorted(reasons) == ["Offline", "Server"], reasons
    stated = {line for lines in reasons.values() for line in lines}
    assert f"NOT SUBMITTABLE ({len(stated)} reasons" in proc.stderr, (sorted(stated), proc.stderr[-3000:])
    assert all(lines for lines in reasons.values()), reasons
    assert all("backend fake (oracle) is a test fake" in line for line in stated), sorted(stated)
    return out


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("round_name", CLOSED_ROUNDS)
def test_full_size_closed_runs_package_into_a_tree_the_official_checker_accepts(round_name: str,
                                                                                 tmp_path: Path) -> None:
    """Closed: performance, accuracy (oracle answers) and TEST06 per scenario, packaged `--division closed`."""
    python = round_python(round_name)
    if python is None:
        pytest.skip(_no_loadgen(round_name))
    checker = trees.export_checker(trees.CHECKER_TAGS[round_name])
    if checker is None:
        pytest.skip(f"mirror of mlcommons/inference absent at {trees.MIRROR} (set MLPERF_INFERENCE_GIT)")
    dataset = closed_dataset(tmp_path / "openorca-synthetic-closed-24576.pkl")
    base = tmp_path / "runs"
    base.mkdir()
    _closed_runs(python, base, round_name, dataset)
    for scenario, mode in CLOSED_PLANS:
        _check_closed_run(base / f"{scenario}-{mode}", round_name, scenario, mode)
    out = _package_closed(python, base, tmp_path, round_name)

    report = check_tree(out, round_name, expected_results=2)
    assert report.passed, [(c.name, c.path, c.detail) for c in report.failures]
    assert report.by_division == {"closed": 2}, report.by_division
    verdict = run_official(out, round_name, checker)
    summary = next((line for line in verdict.log.splitlines() if "SUMMARY" in line), "no SUMMARY line")
    print(f"\n{round_name} closed: official checker {trees.CHECKER_TAGS[round_name]}: {summary.strip()} | "
          f"Closed Results={verdict.closed_results} Open Results={verdict.open_results} "
          f"NoResults={verdict.no_results} errors={len(verdict.errors)} rc={verdict.returncode}")
    assert "--version" in verdict.command and round_name in verdict.command
    assert verdict.passed, verdict.log[-4000:]
    assert (verdict.closed_results, verdict.open_results, verdict.no_results) == (2, 0, 0)
    assert verdict.errors == [], verdict.errors
    keep = os.environ.get("HARNESS_KEEP_FULL_SIZE_TREE")
    if keep:
        shutil.copytree(out, Path(keep) / f"closed-{round_name}", dirs_exist_ok=True)
