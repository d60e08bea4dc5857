"""Llama 3.1 8B trees: TEST06 for llama3.1-8b, and open and closed trees of llama3.1-8b (datacenter: Offline, Server)
and llama3.1-8b-edge (edge system type: SingleStream, Offline) that `submission check` and the official checker of
each round carrying the benchmark accept; a small closed mutation set on which both agree.

The runs are real fake-backend runs (real LoadGen, the 41-article smoke set, seconds each) packaged with
`submission package` and then lifted to full length by trees.lift_to_full_length, which stands in for full-size
runs that cannot run in the test budget: in every detail log it rewrites the sample counts to the benchmark's facts
in the round (13,368 for llama3.1-8b, 5,000 for llama3.1-8b-edge: performance sample count, Offline samples per
query, the accuracy run's sample count), the duration (600 s), validity, early stopping, equal issue, the round's
seeds and the SingleStream min query count (1,024). For closed trees it also rewrites accuracy.txt's summary (not
its hash= line) to the reference values of the facts (ROUGE1/2/L/Lsum and GEN_LEN), which meet the checker's
targets: the fake's answers on the smoke set cannot. Everything else is the real output of LoadGen and the packager.

Round v5.1 is judged by the v5.1.1 tag's script (the patch release of that round): the v5.1 tag's script reads
llama3.1-8b's Offline and Server result from result_inferred_(completed_)tokens_per_second, which LoadGen logs only
for benchmarks with infer_token_latencies (gptj), so it crashes on every llama3.1-8b tree
(`float() argument must be ... not 'NoneType'`; fixed upstream by "Fix llama3.1-8b metric and dataset", #2300);
a test pins that. The v5.1 round has no llama3.1-8b-edge (the facts follow the v5.1 tag), so edge trees are
checked for v6.0 and v6.1. Without the mirror of mlcommons/inference the official half skips with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from compliance.verify import Overrides, resolve_settings
from harness.benchmarks.registry import benchmark_facts
from submission.checker import OfficialVerdict, packaged_results, run_official
from submission.cli import main
from submission.layout import Tree, round_layout
from submission.rules import check_tree
from tests.unit.submission import trees

SYS = trees.SYSTEM.stem
DATACENTER, EDGE = "llama3.1-8b", "llama3.1-8b-edge"
SCENARIOS = {DATACENTER: ("Offline", "Server"), EDGE: ("SingleStream", "Offline")}
SYSTEM_TYPES = {DATACENTER: "datacenter", EDGE: "edge"}
# The checker that judges each round's Llama 3.1 8B trees (v5.1: see the module docstring).
CHECKERS = {**trees.CHECKER_TAGS, "v5.1": "v5.1.1"}
TREES = [(bench, round_name, division) for bench in (DATACENTER, EDGE) for round_name in benchmark_facts(bench).rounds
         for division in ("open", "closed")]


def _runs(benchmark: str) -> dict[tuple[str, str], Path]:
    """(scenario, mode) -> run dir of a real fake-backend run of the benchmark, once per session."""
    found = {}
    for scenario in SCENARIOS[benchmark]:
        for mode in ("performance", "accuracy"):
            out = trees.scratch(f"llama3-runs/{benchmark}") / f"{scenario}-{mode}"
            if not out.exists():
                proc = trees.harness_run(out, scenario, mode, f"benchmark={benchmark}")
                assert (out / "mlperf_log_detail.txt").is_file(), proc.stderr[-2000:]
            found[(scenario, mode)] = out
    return found


def _test06(scenario: str) -> Path:
    """A real `compliance run TEST06` of llama3.1-8b with the fake backend (run + verification)."""
    out = trees.scratch("llama3-test06") / scenario
    if not out.exists():
        args = [sys.executable, "-m", "compliance", "run", "TEST06", "--scenario", scenario, "--set",
                "backend.kind=fake", "--set", "loadgen.target_qps=50", "--set", f"round={trees.installed_round()}",
                "--set", f"benchmark={DATACENTER}", "--output-dir", str(out), "--no-progress"]
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(trees.REPO)}
        proc = subprocess.run(args, cwd=out.parent, env=env, text=True, capture_output=True, timeout=600)
        assert (out / "TEST06" / "verify_accuracy.txt").is_file(), proc.stderr[-2000:]
    return out


def _system(division: str, system_type: str) -> Path:
    """The example system description with its division and system type set (same file name: the system id)."""
    path = trees.scratch(f"llama3-system-{division}-{system_type}") / trees.SYSTEM.name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {**json.loads(trees.SYSTEM.read_text()), "division": division, "system_type": system_type}
        path.write_text(json.dumps(data, indent=2))
    return path


def _package(benchmark: str, round_name: str, division: str, out: Path) -> Path:
    runs = _runs(benchmark)
    test06 = [str(_test06(s)) for s in SCENARIOS[benchmark]] if division == "closed" and benchmark == DATACENTER \
        else []
    args = trees.package_args(runs, out, round_name, "--division", division, *test06)
    args[args.index("--system") + 1] = str(_system(division, SYSTEM_TYPES[benchmark]))
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 0
    trees.lift_to_full_length(out, round_name)
    return out


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, str], Path]:
    """A clean lifted tree per (benchmark, round, division)."""
    return {key: _package(*key, tmp_path_factory.mktemp("-".join(key)) / "tree") for key in TREES}


def _official(round_name: str) -> Path:
    try:
        checker = trees.export_checker(CHECKERS[round_name])
    except subprocess.CalledProcessError:
        pytest.skip(f"the mirror at {trees.MIRROR} has no tag {CHECKERS[round_name]} (fetch its tags)")
    if checker is None:
        pytest.skip(f"official checker of {round_name} unavailable: no mirror of mlcommons/inference at "
                    f"{trees.MIRROR} (fetch it, or set MLPERF_INFERENCE_GIT to a clone)")
    return checker


def _summary(verdict: OfficialVerdict) -> str:
    return "\n".join(line for line in verdict.log.splitlines() if "Results=" in line or "SUMMARY" in line)


def test_test06_of_llama3_1_8b_passes_with_the_runs_eos_id() -> None:
    for scenario in SCENARIOS[DATACENTER]:
        run = _test06(scenario)
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["benchmark"] == DATACENTER
        settings, _ = resolve_settings(run, Overrides())
        assert settings.eos_token_id == manifest["eos_token_id"]
        verify = (run / "TEST06" / "verify_accuracy.txt").read_text()
        assert "EOS check pass: True" in verify and "Sample length check pass: True" in verify, verify
        assert ("First token check pass: True" if scenario == "Server" else "First token check pass: Skipped") \
            in verify, verify


@pytest.mark.parametrize(("bench", "round_name", "division"), TREES)
def test_clean_llama3_tree_passes_our_check(baselines: dict[tuple[str, str, str], Path], bench: str,
                                            round_name: str, division: str) -> None:
    root = baselines[(bench, round_name, division)]
    report = check_tree(root, round_name, expected_results=2)
    assert report.failures == [], [(c.name, c.path, c.detail) for c in report.failures]
    assert report.by_division == {division: 2}
    org = Tree(root, "MyOrg", round_layout(round_name), division).org
    assert sorted(p.name for p in (org / "results" / SYS / bench).iterdir()) == sorted(SCENARIOS[bench])
    compliance = [Tree(root, "MyOrg", round_layout(round_name), division).compliance(SYS, bench, s)
                  for s in SCENARIOS[bench]]
    assert all(p.is_dir() for p in compliance) == (division == "closed" and bench == DATACENTER)


@pytest.mark.parametrize(("bench", "round_name", "division"), TREES)
def test_clean_llama3_tree_passes_the_official_checker(baselines: dict[tuple[str, str, str], Path], bench: str,
                                                       round_name: str, division: str) -> None:
    verdict = run_official(baselines[(bench, round_name, division)], round_name, _official(round_name))
    assert verdict.passed, verdict.log[-3000:]
    assert round_name in verdict.command
    counts = (2, 0) if division == "closed" else (0, 2)
    assert (verdict.closed_results, verdict.open_results, verdict.no_results) == (*counts, 0), _summary(verdict)
    assert verdict.errors == [], verdict.errors
    assert f"Closed Results={counts[0]}," in verdict.log and f"Open Results={counts[1]}," in verdict.log


def test_the_v5_1_tag_script_cannot_read_a_llama3_1_8b_result(baselines: dict[tuple[str, str, str], Path]) -> None:
    """Why v5.1 is judged by v5.1.1: the tag's script wants result_inferred_tokens_per_second, never logged."""
    if trees.export_checker("v5.1") is None:
        pytest.skip(f"no mirror of mlcommons/inference at {trees.MIRROR}")
    root = baselines[(DATACENTER, "v5.1", "open")]
    verdict = run_official(root, "v5.1", trees.export_checker("v5.1") or Path())
    assert not verdict.passed and verdict.no_results == 3, _summary(verdict)
    assert any("caused exception in check_performance_dir: float()" in e for e in verdict.errors), verdict.errors
    detail = Tree(root, "MyOrg", round_layout("v5.1"), "open").performance(SYS, DATACENTER, "Offline")
    text = (detail / "mlperf_log_detail.txt").read_text()
    assert '"result_tokens_per_second"' in text and "result_inferred_tokens_per_second" not in text


def test_an_edge_benchmark_is_refused_with_a_datacenter_system(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    args = trees.package_args(_runs(EDGE), tmp_path / "tree", "v6.1")
    args[args.index("--system") + 1] = str(_system("open", "datacenter"))
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2 and not (tmp_path / "tree").exists()
    assert f"system_type is 'datacenter'; in round v6.1 {EDGE} runs on edge systems only" in " ".join(
        capsys.readouterr().err.split())


@dataclass(frozen=True)
class Mutation:
    """One change to a clean closed llama3.1-8b tree that every round's checker (and ours) must fail."""

    name: str
    apply: Callable[[Tree, str], None]


def _accuracy_txt(tree: Tree, scenario: str) -> Path:
    return tree.accuracy(SYS, DATACENTER, scenario) / "accuracy.txt"


def _rougelsum_below(tree: Tree, round_name: str) -> None:
    facts = benchmark_facts(DATACENTER, round_name)
    metric = facts.metric("rougeLsum")
    assert metric is not None
    trees.lift_accuracy(_accuracy_txt(tree, "Offline"), facts.metrics, {"rougeLsum": round(metric.lower - 0.01, 4)})


def _gen_len_above(tree: Tree, round_name: str) -> None:
    facts = benchmark_facts(DATACENTER, round_name)
    metric = facts.metric("gen_len")
    assert metric is not None and metric.upper is not None
    trees.lift_accuracy(_accuracy_txt(tree, "Server"), facts.metrics, {"gen_len": int(metric.upper) + 1})


MUTATIONS = [
    Mutation("ROUGELSUM below the target (Offline)", _rougelsum_below),
    Mutation("GEN_LEN above the upper limit (Server)", _gen_len_above),
    Mutation("TEST06 missing (Offline)", lambda t, _: shutil.rmtree(t.compliance(SYS, DATACENTER, "Offline"))),
]


@pytest.mark.parametrize("round_name", benchmark_facts(DATACENTER).rounds)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_submission_check_and_the_official_checker_fail_a_closed_llama3_mistake(
        baselines: dict[tuple[str, str, str], Path], tmp_path: Path, mutation: Mutation, round_name: str) -> None:
    root = tmp_path / "tree"
    shutil.copytree(baselines[(DATACENTER, round_name, "closed")], root)
    mutation.apply(Tree(root, "MyOrg", round_layout(round_name), "closed"), round_name)
    ours = check_tree(root, round_name, expected_results=sum(packaged_results(root)[1].values()))
    assert not ours.passed
    verdict = run_official(root, round_name, _official(round_name))
    assert not verdict.passed, _summary(verdict)
    # The scenarios each counts as results (the v5.1.1 script's "Closed Results=" also counts a closed scenario
    # whose accuracy failed; its "Results=" does not) and a failure to count.
    counted = re.search(r"\] Results=(\d+), NoResults=(\d+)", verdict.log)
    assert counted is not None and int(counted[2]) > 0, _summary(verdict)
    assert int(counted[1]) == ours.results < 2, (_summary(verdict), [(c.name, c.detail) for c in ours.failures])
