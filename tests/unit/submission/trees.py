"""Test helpers for submission: real fake-backend runs, packaged trees, full-length lifting, official checkers.

Runs are made by the real `harness run` CLI with the fake backend (real LoadGen 4.0.1, seconds each)
and cached for the whole test session.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.benchmarks.registry import benchmark_facts
from harness.rounds import ROUNDS, round_spec

REPO = Path(__file__).resolve().parents[3]
SYSTEM = REPO / "systems" / "2xH100-SXM-80GBx8_RoCE_TRT.json"
MIRROR = Path(os.environ.get("MLPERF_INFERENCE_GIT", "/work/.mirror/mlcommons+inference/repo"))
_CACHE: dict[str, Any] = {}


def scratch(name: str) -> Path:
    if "root" not in _CACHE:
        root = Path(tempfile.mkdtemp(prefix="submission-tests-"))
        atexit.register(shutil.rmtree, root, True)
        _CACHE["root"] = root
    path: Path = _CACHE["root"] / name
    return path


def installed_round() -> str:
    """The newest round the installed LoadGen produces (the runs' round; packaging lifts them to any round)."""
    from importlib.metadata import version

    installed = version("mlcommons-loadgen")
    found = [name for name in ROUNDS if round_spec(name).loadgen_matches(installed)]
    assert found, f"no round of harness.rounds matches the installed LoadGen {installed}"
    return found[-1]


def harness_run(out: Path, scenario: str, mode: str, *sets: str, fake: bool = True
                ) -> subprocess.CompletedProcess[str]:
    """`python -m harness run` (fake backend unless fake=False: the embedded SmolLM2 default), from a scratch
    CWD, this repository on PYTHONPATH, for the round of the installed LoadGen unless a set names one."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "harness", "run", "--scenario", scenario, "--mode", mode, "--output-dir",
            str(out), "--set", "loadgen.target_qps=50"] + (["--set", "backend.kind=fake"] if fake else [])
    if not any(item.startswith("round=") for item in sets):
        args += ["--set", f"round={installed_round()}"]
    for item in sets:
        args += ["--set", item]
    cwd = out.parent
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(args, cwd=cwd, env=env, text=True, capture_output=True, timeout=600)


def fake_runs(scenarios: tuple[str, ...] = ("Offline", "Server")) -> dict[tuple[str, str], Path]:
    """(scenario, mode) -> run dir of a real fake-backend run (the installed LoadGen's round), once per session."""
    key = f"runs-{'-'.join(scenarios)}"
    if key not in _CACHE:
        found = {}
        for scenario in scenarios:
            for mode in ("performance", "accuracy"):
                out = scratch("runs") / f"{scenario}-{mode}"
                proc = harness_run(out, scenario, mode)
                assert (out / "mlperf_log_detail.txt").is_file(), proc.stderr[-2000:]
                _add_mlperf_conf(out)
                found[(scenario, mode)] = out
        _CACHE[key] = found
    runs: dict[tuple[str, str], Path] = _CACHE[key]
    return runs


def _add_mlperf_conf(run_dir: Path) -> None:
    """Runs of a round with LoadGen-compiled mlperf.conf (v5.0+) write none; the v4.x layout copies the
    performance run's into measurements/. Stand in with the shipped v4.0 file, as lifting stands in for length."""
    if not (run_dir / "mlperf.conf").exists():
        text = round_spec("v4.0").mlperf_conf_text
        assert text is not None
        (run_dir / "mlperf.conf").write_text(text)


def package_args(runs: dict[tuple[str, str], Path], output: Path, round_name: str, *extra: str) -> list[str]:
    """Arguments of `submission package` for these runs."""
    return ["package", *map(str, runs.values()), "--submitter", "MyOrg", "--system", str(SYSTEM),
            "--output", str(output), "--round", round_name, "--allow-unsubmittable", *extra]


def rewrite_detail(path: Path, values: dict[str, Any], error: str | None = None) -> None:
    """Set keys of an :::MLLOG detail log (first occurrence, like the checker reads); optionally add an ERROR
    (and count it in num_errors, which LoadGen 5.1 and later log and the checkers read first)."""
    if error is not None and '"key": "num_errors"' in path.read_text():
        current = next(json.loads(line[len(":::MLLOG"):])["value"] for line in path.read_text().splitlines()
                       if line.startswith(":::MLLOG") and '"key": "num_errors"' in line)
        values = {**values, "num_errors": int(current) + 1}
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith(":::MLLOG"):
            record = json.loads(line[len(":::MLLOG"):])
            if record["key"] in values:
                record["value"] = values[record["key"]]
            line = ":::MLLOG " + json.dumps(record)
        lines.append(line)
    missing = [k for k in values if not any(f'"key": "{k}"' in line for line in lines)]
    for key in missing:
        lines.append(":::MLLOG " + json.dumps(_record(key, values[key], False)))
    if error is not None:
        lines.append(":::MLLOG " + json.dumps(_record("error_runtime", error, True)))
    path.write_text("\n".join(lines) + "\n")


def _record(key: str, value: Any, is_error: bool) -> dict[str, Any]:
    return {"key": key, "value": value, "time_ms": 1.0, "namespace": "mlperf::logging",
            "event_type": "POINT_IN_TIME", "metadata": {"is_error": is_error, "is_warning": False,
                                                        "file": "test", "line_no": 1, "pid": 1, "tid": 1}}


def lift_to_full_length(root: Path, round_name: str) -> None:
    """Stands in for full-length runs (all of the benchmark's samples, e.g. 24576 for Llama 2, >= 600 s) that
    cannot run in the test budget.

    Rewrites only the keys that a shortened run necessarily gets "wrong" (sample counts from the benchmark's facts
    in the round, duration, validity, early stopping, equal issue, the SingleStream query count) and, for rounds
    whose LoadGen cannot run here, the seeds.
    Everything else stays the real LoadGen output. Closed trees also get the reference accuracy
    (lift_accuracy): the fake's answers on the smoke set cannot meet the targets.
    """
    seeds = round_spec(round_name).seeds
    common = {"effective_qsl_rng_seed": seeds.qsl, "effective_sample_index_rng_seed": seeds.sample_index,
              "effective_schedule_rng_seed": seeds.schedule}
    for detail in root.glob("*/*/results/*/*/*/performance/run_1/mlperf_log_detail.txt"):
        facts = benchmark_facts(detail.parents[3].name, round_name)
        values = {**common, "effective_performance_sample_count": facts.performance_samples,
                  "effective_min_duration_ms": 600000, "result_validity": "VALID", "result_min_duration_met": True,
                  "result_min_queries_met": True, "early_stopping_met": True,
                  "effective_sample_concatenate_permutation": True}
        if detail.parents[2].name == "Offline":
            values["effective_samples_per_query"] = facts.performance_samples
        if detail.parents[2].name == "SingleStream":
            values["effective_min_query_count"] = facts.min_queries["SingleStream"]
        rewrite_detail(detail, values)
    for detail in root.glob("*/*/results/*/*/*/accuracy/mlperf_log_detail.txt"):
        samples = benchmark_facts(detail.parents[2].name, round_name).accuracy_samples
        rewrite_detail(detail, {**common, "qsl_reported_total_count": samples,
                                "effective_accuracy_sample_count": samples})
    for accuracy in root.glob("closed/*/results/*/*/*/accuracy/accuracy.txt"):
        lift_accuracy(accuracy, benchmark_facts(accuracy.parents[2].name, round_name).metrics)


def lift_accuracy(accuracy_txt: Path, metrics: Any, values: dict[str, float] | None = None) -> None:
    """Rewrite accuracy.txt's summary to each metric's reference value (or the given values); keep hash=."""
    summary = {m.key: m.reference for m in metrics} | (values or {})
    lines = [line for line in accuracy_txt.read_text().splitlines() if line.startswith("hash=")]
    accuracy_txt.write_text("\nResults\n\n" + str(summary) + "\n" + "".join(f"{line}\n" for line in lines))


def system_file(division: str) -> Path:
    """The example system description with its division set (same file name: the system id stays)."""
    if division == "open":
        return SYSTEM
    path = scratch(f"system-{division}") / SYSTEM.name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**json.loads(SYSTEM.read_text()), "division": division}, indent=2))
    return path


def export_checker(tag: str) -> Path | None:
    """tools/submission of a tag (or HEAD) exported from the mirror, once per session; None without mirror."""
    if not MIRROR.exists():
        return None
    key = f"checker-{tag}"
    if key not in _CACHE:
        target = scratch(key)
        target.mkdir(parents=True)
        paths = ["tools/submission/submission_checker", "tools/submission/log_parser.py"] if tag == "HEAD" else [
            "tools/submission/submission_checker.py", "tools/submission/log_parser.py"]
        archive = subprocess.run(["git", "-C", str(MIRROR), "archive", tag, *paths], capture_output=True,
                                 check=True)
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        _CACHE[key] = target
    path: Path = _CACHE[key]
    return path


# The official checker of each round: its tag, and master (HEAD) for v6.0 (the v6.0.0pre tag cannot check v6.0).
CHECKER_TAGS = {"v4.0": "v4.0", "v4.1": "v4.1", "v5.0": "v5.0", "v5.1": "v5.1", "v6.0": "HEAD", "v6.1": "HEAD"}


def compliance_run(out: Path, scenario: str) -> Path:
    """A real `python -m compliance run TEST06` with the fake backend (run + verification), once per session."""
    key = f"test06-{scenario}"
    if key not in _CACHE:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        args = [sys.executable, "-m", "compliance", "run", "TEST06", "--scenario", scenario, "--set",
                "backend.kind=fake", "--set", "loadgen.target_qps=50", "--set", f"round={installed_round()}",
                "--output-dir", str(out), "--no-progress"]
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(args, cwd=out.parent, env=env, text=True, capture_output=True, timeout=600)
        assert (out / "TEST06" / "verify_accuracy.txt").is_file(), proc.stderr[-2000:]
        _CACHE[key] = out
    path: Path = _CACHE[key]
    return path
