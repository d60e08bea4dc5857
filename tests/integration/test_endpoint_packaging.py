"""Endpoint runs packaged: a stand-in that reports itself as vLLM 0.32.0, on a system described as vLLM 0.32.0.

Real `harness run` and `compliance run TEST06` processes (real LoadGen, the endpoint client) run Offline and Server
performance, accuracy and TEST06 against tests/unit/harness/backends/endpoint/standin.py, which serves
"meta-llama/Llama-2-70b-chat-hf" from /models/Llama-2-70b-chat-hf and reports vLLM's /version and /metrics (prefix
caching off, or on). What is shown:

- open: no provenance contradiction, and the only not-submittable reasons are those of a short run (the manifests'
  short-run reasons, and Server's INVALID for early stopping alone); the same runs lifted to full length
  (`trees.lift_to_full_length` on copies laid out as a tree, plus those manifest reasons) package WITHOUT
  --allow-unsubmittable and pass `submission check`;
- closed: besides the short run's reasons, exactly the accuracy of the stand-in's answers (ids that are a function
  of the prompt, not an answer: ROUGE near 0, 1024 tokens per sample) and the reference deviations of this test's
  harness setup (the embedded SmolLM2 as its tokenizer, 16 smoke samples); nothing about provenance or caching;
- closed, prefix caching on: exactly one reason more per scenario, naming vLLM's setting, the URL and
  --no-enable-prefix-caching, first in each README; open records it as a deviation and packages as before.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.artifacts import ReasonCode, RunResult
from harness.benchmarks.registry import benchmark_facts
from harness.errors import InputError
from harness.logs import parse_detail_log
from harness.rounds import round_spec
from submission.cli import main
from submission.package import PackageRequest, PackageResult, package_submission
from submission.rules import check_tree
from submission.rules.closed import metric_values
from tests.unit.harness.backends.endpoint.standin import StandIn
from tests.unit.submission import trees

RunSet = dict[tuple[str, str], Path]  # (scenario, role: performance | accuracy | test06) -> run dir

ROUND = trees.installed_round()
BENCH = "llama2-70b-99.9"
SERVED = "meta-llama/Llama-2-70b-chat-hf"
ROOT = "/models/Llama-2-70b-chat-hf"
SAMPLES = 16
SCENARIOS = ("Offline", "Server")  # closed, datacenter: Offline plus Server or Interactive
SETS = ("backend.kind=endpoint", f"dataset.max_samples={SAMPLES}", "generation.max_new_tokens=1024")
SYSTEM_ID = "1xH100-SXM-80GBx8_vLLM"
VLLM_SYSTEM = {"system_name": "1 node x 8x NVIDIA H100-SXM-80GB (HGX H100), one vLLM server", "number_of_nodes": 1,
               "accelerators_per_node": 8, "framework": "vLLM 0.32.0", "hw_notes": "Tensor parallel 8, one server",
               "sw_notes": "vLLM OpenAI server, --no-enable-prefix-caching"}
HAND_KEPT = {"starting_weights_filename": SERVED, "weight_transformations": "none", "weight_data_types": "bf16"}
# The reference deviations of this test's harness setup (closed refuses them; open lists them in the README).
SETUP_DEVIATIONS = ("closed allows no deviation from the reference: model: SmolLM2-135M-Instruct instead of "
                    "Llama-2-70b-chat-hf",  # run_record: model.path unset = the embedded tokenizer
                    f"closed allows no deviation from the reference: dataset.max_samples: all -> {SAMPLES}",
                    "closed allows no deviation from the reference: dataset: embedded smoke set")


def _compliance_run(out: Path, scenario: str, url: str) -> subprocess.CompletedProcess[str]:
    """`python -m compliance run TEST06` against the stand-in (run and verification)."""
    sets = [*SETS, f"backend.urls={url}", "loadgen.target_qps=50", f"round={ROUND}"]
    args = [sys.executable, "-m", "compliance", "run", "TEST06", "--scenario", scenario, "--output-dir", str(out),
            "--no-progress", *(word for item in sets for word in ("--set", item))]
    return subprocess.run(args, cwd=out.parent, env={**os.environ, "PYTHONPATH": str(trees.REPO)}, text=True,
                          capture_output=True, timeout=600)


def _run_set(root: Path, caching: bool) -> RunSet:
    """Performance, accuracy and TEST06 runs of both scenarios against one stand-in reporting itself as vLLM."""
    runs: RunSet = {}
    with StandIn(model=SERVED, version="0.32.0", prefix_caching=caching, root=ROOT) as server:
        for scenario in SCENARIOS:
            for role in ("performance", "accuracy", "test06"):
                out = root / f"{scenario}-{role}"
                if role == "test06":
                    process = _compliance_run(out, scenario, server.url)
                else:
                    process = trees.harness_run(out, scenario, role, *SETS, f"backend.urls={server.url}", fake=False)
                # exit 1 only for Server performance, LoadGen judges it INVALID: 16 queries cannot meet early stopping
                allowed = (0, 1) if (scenario, role) == ("Server", "performance") else (0,)
                assert process.returncode in allowed, f"{scenario} {role}: {process.stderr[-3000:]}"
                runs[(scenario, role)] = out
    return runs


@pytest.fixture(scope="module")
def endpoint_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[bool, RunSet]]:
    """caching (False, True) -> its six runs."""
    root = tmp_path_factory.mktemp("endpoint-packaging")
    yield {caching: _run_set(root / f"caching-{caching}", caching) for caching in (False, True)}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The system description per division (systems/<id>.json, no measurements/ beside it) and the measurements
    keys a closed result states by hand."""
    root = tmp_path_factory.mktemp("inputs")
    found = {}
    for division in ("open", "closed"):
        path = root / division / "systems" / f"{SYSTEM_ID}.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(json.loads(trees.SYSTEM.read_text()) | VLLM_SYSTEM | {"division": division}))
        found[division] = path
    found["measurements"] = root / "measurements.json"
    found["measurements"].write_text(json.dumps(HAND_KEPT))
    return found


def _manifest(run: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run / "manifest.json").read_text())
    return data


def _package(runs: RunSet, output: Path, inputs: dict[str, Path], division: str,
             allow: bool = True) -> PackageResult:
    return package_submission(PackageRequest(ROUND, "MyOrg", inputs[division], list(runs.values()), output,
                                             allow_unsubmittable=allow, division=division,
                                             measurements_file=inputs["measurements"]))


def _short_run_reasons(runs: RunSet) -> list[str]:
    """What makes these runs short, as the packager names it: each performance/accuracy manifest's short-run
    reasons, and Server's INVALID, which (as asserted) is early stopping alone."""
    found = []
    for (scenario, role), run in runs.items():
        if role == "test06":
            continue
        reasons = _manifest(run)["not_submittable_reasons"]
        assert isinstance(reasons, list) and {r["code"] for r in reasons} == {ReasonCode.SHORT_RUN.value}, reasons
        found += [f"{run}: {reason['text']}" for reason in reasons]
        detail = parse_detail_log(run / "mlperf_log_detail.txt")
        if role == "performance" and detail["result_validity"] != "VALID":
            assert scenario == "Server" and detail["early_stopping_met"] is False, scenario
            assert all(detail[key] is True for key in ("result_perf_constraints_met", "result_min_duration_met",
                                                       "result_min_queries_met"))
            found.append(f"{run}: LoadGen result is INVALID (result_validity INVALID): an INVALID result")
    return found


def _closed_length_reasons(runs: RunSet) -> list[str]:
    """The closed division's own length rules on the performance runs (min duration, samples; Offline's query)."""
    found = []
    for scenario in SCENARIOS:
        run = runs[(scenario, "performance")]
        found += [f"{run}: min duration 0 ms; closed needs >= 600000 ms (a shortened run)",
                  f"{run}: effective_performance_sample_count {SAMPLES}; closed needs >= 24576"]
        if scenario == "Offline":
            found.append(f"{run}: effective_samples_per_query {SAMPLES}; closed needs >= 24576")
    return found


def _accuracy_reasons(runs: RunSet) -> list[str]:
    """The stand-in's answers miss every ROUGE target and exceed the tokens-per-sample window (1024 tokens each)."""
    found = []
    facts = benchmark_facts(BENCH, ROUND)
    for scenario in SCENARIOS:
        run = runs[(scenario, "accuracy")]
        lines = (run / "accuracy.txt").read_text().splitlines()
        values = metric_values(facts, lines, round_spec(ROUND).checker_family)
        assert all(len(found) == 1 for found in values.values()), values
        scores = {key: found[0] for key, found in values.items()}
        for metric in facts.metrics:
            if metric.key == "tokens_per_sample":
                assert metric.upper is not None and scores[metric.key] == 1024 > metric.upper
                found.append(f"{run}: closed: tokens_per_sample 1024 is above the {BENCH} upper limit "
                             f"{metric.upper:g} ({metric.upper_factor:g} x {metric.reference:g})")
            else:
                assert scores[metric.key] < metric.lower, (metric.key, scores)
                found.append(f"{run}: closed: {metric.key} {scores[metric.key]:g} is below the {BENCH} target "
                             f"{metric.lower:g} ({metric.factor:g} x {metric.reference:g})")
    return found


def _setup_deviations(reasons: list[str], runs: RunSet) -> list[str]:
    """The reasons that are this test's harness setup (SETUP_DEVIATIONS), after checking each run has all three."""
    found = [r for r in reasons if any(f"{run}: {line}" in r for run in runs.values() for line in SETUP_DEVIATIONS)]
    assert len(found) == len(SETUP_DEVIATIONS) * len(runs), found
    return found


def _caching_lines(runs: RunSet) -> list[str]:
    """closed_reasons' caching line per scenario: every run of it, with the URL, the setting and the fix."""
    found = []
    for scenario in SCENARIOS:
        parts = []
        for role, name in (("performance", "Performance"), ("accuracy", "Accuracy"), ("test06", "TEST06")):
            [engine] = _manifest(runs[(scenario, role)])["details"]["engines"]  # type: ignore[index]
            assert engine["prefix_caching"] == "on", engine
            parts.append(f"the {name} run {runs[(scenario, role)]}: vLLM --enable-prefix-caching is on at "
                         f"{engine['url']}; start it with --no-enable-prefix-caching")
        found += [f"closed forbids cross-query caching: {part}" for part in parts]
    return found


def test_every_run_recorded_the_vllm_it_ran_against(endpoint_runs: dict[bool, RunSet]) -> None:
    for caching, runs in endpoint_runs.items():
        for key, run in runs.items():
            manifest = _manifest(run)
            assert manifest["status"] == "completed", key
            [engine] = manifest["details"]["engines"]  # type: ignore[index]
            assert (engine["engine"], engine["version"], engine["model"], engine["model_root"]) == (
                "vllm", "0.32.0", SERVED, ROOT), key
            assert engine["prefix_caching"] == ("on" if caching else "off")
            assert engine["settings"]["enable_prefix_caching"] == str(caching)
        for scenario in SCENARIOS:
            verdict = (runs[(scenario, "test06")] / "TEST06" / "verify_accuracy.txt").read_text().splitlines()
            first = "Skipped" if scenario == "Offline" else "True"  # Offline reports no first tokens
            assert verdict == [f"First token check pass: {first}", "EOS check pass: True",
                               "Sample length check pass: True", "TEST06 verification complete"], (scenario, verdict)


def test_open_reasons_are_only_those_of_a_short_run(endpoint_runs: dict[bool, RunSet], inputs: dict[str, Path],
                                                    tmp_path: Path) -> None:
    runs = endpoint_runs[False]
    with pytest.raises(InputError, match=r"^not submittable: ") as refused:  # contradictions would come first
        _package(runs, tmp_path / "refused", inputs, "open", allow=False)
    assert "provenance" not in refused.value.message and not (tmp_path / "refused").exists()
    result = _package(runs, tmp_path / "tree", inputs, "open")
    assert sorted(result.unsubmittable) == sorted(_short_run_reasons(runs))
    for scenario in SCENARIOS:
        readme = (tmp_path / "tree/open/MyOrg/results" / SYSTEM_ID / BENCH / scenario / "README.md").read_text()
        assert "PROVENANCE CONTRADICTIONS" not in readme and "cross-query prefix caching" not in readme
        assert "backend: endpoint (vllm, meta-llama/Llama-2-70b-chat-hf, 1 URL)" in readme
    assert {c.name for c in result.findings if c.failed} <= {"performance-sample-count", "min-duration",
                                                             "early-stopping", "accuracy-sample-count",
                                                             "scenario-result", "result-count"}


def _lifted(runs: RunSet, root: Path, division: str) -> RunSet:
    """Copies of the performance and accuracy runs lifted to full length, TEST06 runs as they are.

    trees.lift_to_full_length rewrites a packaged tree's detail logs (and closed accuracy.txt); the copies are laid
    out where it looks (<division>/<org>/results/<sys>/<bench>/<scenario>/performance/run_1, .../accuracy), so the
    runs get exactly what a lifted tree gets. Their manifests lose the short-run reasons (each asserted to be coded
    short-run) and take the lifted result keys, as a full-length run's manifest would have them.
    """
    lifted: RunSet = {}
    for (scenario, role), run in runs.items():
        if role == "test06":
            lifted[(scenario, role)] = run
            continue
        target = root / division / "MyOrg/results/lifted" / BENCH / scenario / (
            "performance/run_1" if role == "performance" else "accuracy")
        shutil.copytree(run, target)
        lifted[(scenario, role)] = target
    trees.lift_to_full_length(root, ROUND)
    for (_, role), run in lifted.items():
        if role == "test06":
            continue
        manifest = _manifest(run)
        reasons = manifest["not_submittable_reasons"]
        assert isinstance(reasons, list) and all(r["code"] == ReasonCode.SHORT_RUN.value for r in reasons), reasons
        detail = parse_detail_log(run / "mlperf_log_detail.txt")
        result = manifest["result"]
        assert isinstance(result, dict)
        result.update({key: detail[key] for key in RunResult.detail_log_keys() if detail[key] is not None})
        manifest.update(not_submittable_reasons=[], submittable=True)
        (run / "manifest.json").write_text(json.dumps(manifest))
    return lifted


def test_open_runs_lifted_to_full_length_package_without_allow_unsubmittable(
        endpoint_runs: dict[bool, RunSet], inputs: dict[str, Path], tmp_path: Path) -> None:
    runs = _lifted(endpoint_runs[False], tmp_path / "lifted", "open")
    out = tmp_path / "tree"
    args = ["package", *map(str, runs.values()), "--submitter", "MyOrg", "--system", str(inputs["open"]),
            "--output", str(out), "--round", ROUND, "--measurements", str(inputs["measurements"])]
    with pytest.raises(SystemExit) as packaged:
        main(args)
    assert packaged.value.code == 0
    for scenario in SCENARIOS:
        readme = (out / "open/MyOrg/results" / SYSTEM_ID / BENCH / scenario / "README.md").read_text()
        assert "NOT A VALID SUBMISSION" not in readme and "PROVENANCE CONTRADICTIONS" not in readme
        assert "vllm@http://127.0.0.1:" in readme and "0.32.0" in readme
    report = check_tree(out, ROUND, expected_results=len(SCENARIOS))
    assert report.passed, [f"{c.name}: {c.detail}" for c in report.failures]
    with pytest.raises(SystemExit) as checked:
        main(["check", str(out), "--round", ROUND, "--expected", str(len(SCENARIOS))])
    assert checked.value.code == 0


def test_closed_reasons_beyond_length_are_the_accuracy_and_this_tests_setup(
        endpoint_runs: dict[bool, RunSet], inputs: dict[str, Path], tmp_path: Path) -> None:
    """The stand-in's answers cannot meet the targets on any data: they are ids derived from the prompt, never an
    answer. Even an oracle stand-in could not here: the smoke set's references are far shorter than the window's
    lower limit of 0.9 x 294.45 tokens per sample (and lift_to_full_length writes the reference accuracy for
    closed trees for that reason)."""
    runs = endpoint_runs[False]
    result = _package(runs, tmp_path / "tree", inputs, "closed")
    expected = _short_run_reasons(runs) + _closed_length_reasons(runs) + _accuracy_reasons(runs)
    setup = _setup_deviations(result.unsubmittable, runs)
    assert sorted(set(result.unsubmittable) - set(setup)) == sorted(expected)
    assert len(result.unsubmittable) == len(expected) + len(setup)  # nothing twice
    assert not any(word in r for r in result.unsubmittable for word in (
        "cross-query caching", "closed needs a TEST06", "runs too", "measurements JSON", "max_new_tokens is"))
    readme = (tmp_path / "tree/closed/MyOrg/results" / SYSTEM_ID / BENCH / "Offline/README.md").read_text()
    assert "PROVENANCE CONTRADICTIONS" not in readme
    # at full length the accuracy is the lift's reference and only this test's setup is left
    lifted = _lifted(runs, tmp_path / "lifted", "closed")
    with pytest.raises(InputError, match=r"^not submittable: .*closed allows no deviation from the reference"):
        _package(lifted, tmp_path / "lifted-tree", inputs, "closed", allow=False)
    again = _package(lifted, tmp_path / "lifted-tree", inputs, "closed")
    assert sorted(again.unsubmittable) == sorted(_setup_deviations(again.unsubmittable, lifted))


def test_prefix_caching_on_is_refused_by_closed_with_the_setting_and_url_named(
        endpoint_runs: dict[bool, RunSet], inputs: dict[str, Path], tmp_path: Path) -> None:
    lifted = {caching: _lifted(endpoint_runs[caching], tmp_path / f"lifted-{caching}", "closed")
              for caching in (False, True)}
    off, on = (_package(lifted[caching], tmp_path / f"tree-{caching}", inputs, "closed") for caching in (False, True))
    extra = [r for r in on.unsubmittable if r.startswith("closed forbids cross-query caching: ")]
    assert sorted(extra) == sorted(_caching_lines(lifted[True]))  # one per run, each naming the URL and the fix

    def anonymous(reasons: list[str]) -> list[str]:
        return sorted(re.sub(r"/\S*/(lifted|caching)-(True|False)/", "/RUNS/", r) for r in reasons)

    assert anonymous([r for r in on.unsubmittable if r not in extra]) == anonymous(off.unsubmittable)
    with pytest.raises(InputError, match=r"^not submittable: "):
        _package(lifted[True], tmp_path / "refused", inputs, "closed", allow=False)
    url = _manifest(endpoint_runs[True][("Server", "accuracy")])["details"]["engines"][0]["url"]  # type: ignore[index]
    for scenario in SCENARIOS:
        readme = (tmp_path / "tree-True/closed/MyOrg/results" / SYSTEM_ID / BENCH / scenario / "README.md").read_text()
        head = readme.split("## Hardware")[0]
        assert "NOT A VALID SUBMISSION" in head and "closed forbids cross-query caching" in head
        assert f"vLLM --enable-prefix-caching is on at {url}; start it with --no-enable-prefix-caching" in head
    # open records it as a deviation and refuses nothing more than with caching off
    open_on = _package(endpoint_runs[True], tmp_path / "open-on", inputs, "open")
    assert sorted(open_on.unsubmittable) == sorted(_short_run_reasons(endpoint_runs[True]))
    readme = (tmp_path / "open-on/open/MyOrg/results" / SYSTEM_ID / BENCH / "Server/README.md").read_text()
    assert (f"cross-query prefix caching (prohibited in the closed division): vLLM --enable-prefix-caching is on at "
            f"{url}; start it with --no-enable-prefix-caching") in readme
