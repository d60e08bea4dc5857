"""Harness overhead: the instant fake backend through the full harness vs a bare LoadGen SUT, same run.

Offline: 24,576 samples, samples/s ratio (harness / bare), median of --repeats interleaved attempts. Two bare
SUTs: the usual one (ConstructSUT, QuerySample objects, as the MLCommons reference implementations use) and
the "fast" one (ConstructFastSUT, ids and indices as integer lists, which the harness itself uses).
Server: rising target QPS; for each, whether the run is VALID with no LoadGen errors, for both.
MPI path (--mpi-ranks N, default 2; 0 skips it): the same harness run under `mpirun -np N`, rank 0 running
LoadGen and one replica, the other ranks a fake replica each, results coming back over MPI: Offline
samples/s (ratio to the bare SUT) and the Server QPS levels.
Answers are 294 int32 tokens (the reference mean).
TensorRT-LLM path (--trtllm-fake): the same Offline run through backend.kind trtllm on the strict TensorRT-LLM fake
(tests/fakes; answers of 3-13 tokens a request): samples/s against the bare SUT and the LoadGen calls per sample
(QuerySamplesComplete calls / samples, from the manifest's details.sut). --engine-repo runs that side from another
checkout of the project (e.g. a worktree of an older commit: before/after in one invocation).
Every measurement is a separate process (one LoadGen test per process). Prints a table of ratios.

    python benchmarks/harness_overhead.py [--qps 5000,10000,20000,30000] [--server-seconds 10] [--repeats 3]
                                          [--mpi-ranks 2] [--trtllm-fake] [--engine-repo PATH ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SAMPLES = 24576
TOKENS = 294

BARE_SUT = textwrap.dedent("""
    import array, sys, mlperf_loadgen as lg
    scenario, mode_conf, user_conf, outdir, fast = sys.argv[1:6]
    tokens = array.array("i", list(range(100, 100 + %(tokens)d - 1)) + [2])
    first = array.array("i", tokens[:1])
    ptr, size = tokens.buffer_info(); fptr, fsize = first.buffer_info()
    server = scenario == "Server"
    def issue_ids(ids):
        if server:
            lg.FirstTokenComplete([lg.QuerySampleResponse(i, fptr, fsize * 4) for i in ids])
        lg.QuerySamplesComplete([lg.QuerySampleResponse(i, ptr, size * 4, %(tokens)d) for i in ids])
    def issue(samples):
        if server:
            lg.FirstTokenComplete([lg.QuerySampleResponse(s.id, fptr, fsize * 4) for s in samples])
        lg.QuerySamplesComplete([lg.QuerySampleResponse(s.id, ptr, size * 4, %(tokens)d) for s in samples])
    ts = lg.TestSettings()
    ts.FromConfig(mode_conf, "llama2-70b", scenario); ts.FromConfig(user_conf, "llama2-70b", scenario)
    ts.scenario = getattr(lg.TestScenario, scenario); ts.mode = lg.TestMode.PerformanceOnly
    ls = lg.LogSettings(); ls.log_output.outdir = outdir; ls.enable_trace = False
    if fast == "fast":
        sut = lg.ConstructFastSUT(lambda ids, indices: issue_ids(ids), lambda: None)
    else:
        sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(%(samples)d, %(samples)d, lambda s: None, lambda s: None)
    lg.StartTestWithLogSettings(sut, qsl, ts, ls)
""") % {"tokens": TOKENS, "samples": SAMPLES}


def _detail(run_dir: Path) -> dict[str, object]:
    values: dict[str, object] = {"errors": 0}
    for line in (run_dir / "mlperf_log_detail.txt").read_text().splitlines():
        if line.startswith(":::MLLOG"):
            record = json.loads(line[8:])
            values.setdefault(record["key"], record["value"])
            values["errors"] = int(values["errors"]) + int(bool(record["metadata"].get("is_error")))
    return values


def _user_conf(scenario: str, qps: float, seconds: int) -> str:
    lines = [f"llama2-70b.{scenario}.target_qps = {qps}", f"llama2-70b.{scenario}.min_duration = {seconds * 1000}"]
    if scenario == "Offline":
        lines.append("llama2-70b.Offline.min_duration = 0")
    return "\n".join(lines) + "\n"


def run_bare(work: Path, scenario: str, qps: float, seconds: int, fast: bool = False) -> dict[str, object]:
    out = Path(tempfile.mkdtemp(prefix=f"bare-{scenario}-{qps:.0f}-", dir=work))
    (out / "user.conf").write_text(_user_conf(scenario, qps, seconds))
    script = work / "bare_sut.py"
    script.write_text(BARE_SUT)
    mlperf_conf = REPO / "harness/data/mlperf-v4.0.conf"
    subprocess.run([sys.executable, str(script), scenario, str(mlperf_conf), str(out / "user.conf"), str(out),
                    "fast" if fast else "plain"], check=True, capture_output=True, cwd=work)
    return _detail(out)


def run_harness(work: Path, dataset: Path, scenario: str, qps: float, seconds: int,
                mpi_ranks: int = 0) -> dict[str, object]:
    out = Path(tempfile.mkdtemp(prefix=f"harness-{scenario}-{qps:.0f}-", dir=work)) / "run"
    overrides = ["backend.kind=fake", f"backend.output_tokens={TOKENS}", f"dataset.path={dataset}",
                 f"scenario={scenario}", f"loadgen.target_qps={qps}", f"output_dir={out}",
                 f"loadgen.min_duration={0 if scenario == 'Offline' else seconds * 1000}",
                 f"generation.max_new_tokens={TOKENS + 10}"]
    args = [sys.executable, "-m", "harness", "run", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if mpi_ranks:
        args = ["mpirun", "-np", str(mpi_ranks), "--oversubscribe", "-x", "PYTHONPATH", *args]
        env |= {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "OMPI_MCA_btl": "self,vader",
                "OMPI_MCA_pml": "ob1"}
    for override in overrides:
        args += ["--set", override]
    subprocess.run(args, capture_output=True, cwd=work, env=env, timeout=600)
    return _detail(out)


def run_trtllm_fake(work: Path, dataset: Path, repo: Path) -> dict[str, object]:
    """One Offline harness run of `repo` with backend.kind trtllm on the TensorRT-LLM fake: detail-log values plus
    the SUT's LoadGen call counters from the manifest."""
    from harness.model_files import embedded_model

    out = Path(tempfile.mkdtemp(prefix="harness-trtllm-fake-", dir=work)) / "run"
    model = embedded_model()
    overrides = ["backend.kind=trtllm", f"model.path={work}", f"model.tokenizer={model.display}",
                 "dataset.chat_template=false", f"dataset.path={dataset}", "scenario=Offline",
                 "loadgen.target_qps=1000000", f"output_dir={out}", "loadgen.min_duration=0",
                 "generation.max_new_tokens=16", "backend.gpu_check=false"]
    args = [sys.executable, "-m", "harness", "run", "--no-progress"]
    for override in overrides:
        args += ["--set", override]
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{REPO / 'tests' / 'fakes'}"}
    done = subprocess.run(args, capture_output=True, cwd=work, env=env, timeout=1200, text=True)
    if not (out / "manifest.json").is_file():
        raise SystemExit(f"the trtllm-fake run of {repo} wrote no manifest: {done.stderr[-2000:]}")
    values = _detail(out)
    sut = json.loads((out / "manifest.json").read_text()).get("details", {}).get("sut", {})
    values["completed"] = sut.get("completed", 0)
    values["completion_calls"] = sut.get("completion_calls")
    return values


def _trtllm_section(work: Path, dataset: Path, repos: list[Path], repeats: int) -> None:
    print("TensorRT-LLM fake, Offline: checkout | samples/s (ratio to bare) | LoadGen completion calls per sample")
    for repo in repos:
        for attempt in range(1, repeats + 1):
            bare = float(run_bare(work, "Offline", 1e6, 0)["result_samples_per_second"])
            ours = run_trtllm_fake(work, dataset, repo)
            rate = float(ours.get("result_samples_per_second", 0))
            calls = ours["completion_calls"]
            per_sample = f"{int(calls) / int(ours['completed']):.4f} ({calls} calls)" if calls is not None and \
                int(ours["completed"]) else "not counted by this checkout"
            print(f"{repo} #{attempt} | {rate:,.0f} ({rate / bare:.3f}) | {per_sample} | errors {ours['errors']}")


def synthetic_dataset(work: Path) -> Path:
    """24,576 samples in the OpenOrca pickle schema (prompt ids only matter to the fake backend)."""
    frame = pd.DataFrame({"tok_input": [[1, 100 + i % 1000, 29871] for i in range(SAMPLES)],
                          "output": ["reference"] * SAMPLES})
    path = work / "synthetic.pkl"
    frame.to_pickle(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qps", default="5000,10000,20000,30000")
    parser.add_argument("--server-seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="Offline measurements of each side")
    parser.add_argument("--mpi-ranks", type=int, default=2, help="ranks of the MPI-path runs (0: skip them)")
    parser.add_argument("--trtllm-fake", action="store_true", help="only the TensorRT-LLM fake section")
    parser.add_argument("--engine-repo", type=Path, action="append", default=[],
                        help="checkout(s) the TensorRT-LLM fake section runs (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="harness-overhead-") as tmp:
        work = Path(tmp)
        dataset = synthetic_dataset(work)
        if args.trtllm_fake:
            _trtllm_section(work, dataset, args.engine_repo or [REPO], args.repeats)
            return
        ratios, fast_ratios, rates, mpi_ratios, mpi_rates = [], [], [], [], []
        for attempt in range(1, args.repeats + 1):  # interleaved, so a noisy moment hits every side
            bare = float(run_bare(work, "Offline", 1e6, 0)["result_samples_per_second"])
            bare_fast = float(run_bare(work, "Offline", 1e6, 0, fast=True)["result_samples_per_second"])
            ours = run_harness(work, dataset, "Offline", 1e6, 0)
            rates.append(float(ours["result_samples_per_second"]))
            ratios.append(rates[-1] / bare)
            fast_ratios.append(rates[-1] / bare_fast)
            print(f"Offline {SAMPLES} samples, attempt {attempt}: bare {bare:,.0f}, bare fast {bare_fast:,.0f}, "
                  f"harness {rates[-1]:,.0f} samples/s; ratio {ratios[-1]:.2f} (to bare fast {fast_ratios[-1]:.2f}); "
                  f"harness errors {ours['errors']}")
            if args.mpi_ranks:
                over_mpi = run_harness(work, dataset, "Offline", 1e6, 0, mpi_ranks=args.mpi_ranks)
                mpi_rates.append(float(over_mpi.get("result_samples_per_second", 0)))
                mpi_ratios.append(mpi_rates[-1] / bare)
                print(f"  MPI path ({args.mpi_ranks} ranks): {mpi_rates[-1]:,.0f} samples/s, "
                      f"ratio {mpi_ratios[-1]:.2f}, errors {over_mpi['errors']}")
        print(f"Offline, median of {len(ratios)}: harness {statistics.median(rates):,.0f} samples/s, ratio "
              f"{statistics.median(ratios):.2f}, ratio to the bare fast SUT {statistics.median(fast_ratios):.2f}")
        if mpi_rates:
            print(f"Offline over MPI ({args.mpi_ranks} ranks), median of {len(mpi_rates)}: "
                  f"{statistics.median(mpi_rates):,.0f} samples/s, ratio {statistics.median(mpi_ratios):.2f}")
        print("Server target QPS | bare: validity, errors, completed/s | harness: validity, errors, completed/s")
        for qps in (float(q) for q in args.qps.split(",")):
            b = run_bare(work, "Server", qps, args.server_seconds)
            h = run_harness(work, dataset, "Server", qps, args.server_seconds)
            line = (f"{qps:>10,.0f} | {b.get('result_validity')}, {b['errors']}, "
                    f"{float(b.get('result_completed_samples_per_sec', 0)):,.0f} | "
                    f"{h.get('result_validity')}, {h['errors']}, "
                    f"{float(h.get('result_completed_samples_per_sec', 0)):,.0f}")
            if args.mpi_ranks:
                m = run_harness(work, dataset, "Server", qps, args.server_seconds, mpi_ranks=args.mpi_ranks)
                line += (f" | MPI: {m.get('result_validity')}, {m['errors']}, "
                         f"{float(m.get('result_completed_samples_per_sec', 0)):,.0f}")
            print(line)


if __name__ == "__main__":
    main()
