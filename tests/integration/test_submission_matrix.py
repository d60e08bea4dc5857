"""The mutation matrix of mlperf-rules.md §9: realistic mistakes applied to a passing tree, for every round.

`submission check` must fail a mutated tree for exactly the rounds whose official checker fails it
(the verdicts below are the doc's table, extended by measurement; v6.0 is judged by master's checker).
Where the mirror of mlcommons/inference exists, the official checker of each round is run on the same
mutated tree and must give the same verdict as `submission check` (a handful of mutations per round in
the default suite, all of them under `slow`); without the mirror those tests skip and say so. The
passing baseline is a tree packaged from real fake-backend runs, lifted to full length by
trees.lift_to_full_length (which stands in for 24576-sample, 600 s runs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from submission.checker import packaged_scenarios, run_official
from submission.cli import main
from submission.layout import Tree, round_layout
from submission.rules import check_tree, family
from tests.unit.submission import trees

ROUNDS = ("v4.0", "v4.1", "v5.0", "v5.1", "v6.0", "v6.1")
SYS = trees.SYSTEM.stem
BENCH = "llama2-70b-99.9"  # the default benchmark of the runs (the one every round carries)


@dataclass(frozen=True)
class Ctx:
    """A mutable copy of a baseline tree."""

    root: Path
    round: str

    @property
    def tree(self) -> Tree:
        return Tree(self.root, "MyOrg", round_layout(self.round))

    @property
    def org(self) -> Path:
        return self.tree.org

    def scenario(self, scenario: str) -> Path:
        return self.tree.scenario(SYS, BENCH, scenario)

    def perf(self, scenario: str) -> Path:
        return self.tree.performance(SYS, BENCH, scenario) / "mlperf_log_detail.txt"

    def acc(self, scenario: str) -> Path:
        return self.tree.accuracy(SYS, BENCH, scenario)

    def system(self) -> Path:
        return self.tree.system_json(SYS)

    def edit_system(self, **values: object) -> None:
        data = json.loads(self.system().read_text())
        data.update(values)
        self.system().write_text(json.dumps(data, indent=2))

    def measurements_json(self, scenario: str) -> Path:
        return self.tree.measurements_json(SYS, BENCH, scenario, "mlperf-llm-harness")


@dataclass(frozen=True)
class Mutation:
    """One change to a passing tree and the checker families (v4, v5, head) or rounds (v4.1) that fail on it."""

    name: str
    apply: Callable[[Ctx], None]
    fails: frozenset[str]

    def fails_in(self, round_name: str) -> bool:
        """Whether the official checker of the round fails the mutated tree."""
        return round_name in self.fails or family(round_name) in self.fails


def _f(*families: str) -> frozenset[str]:
    return frozenset(families)


ALL, TAGS, NONE = _f("v4", "v5", "head"), _f("v4", "v5"), _f()


def _accuracy_text(ctx: Ctx, transform: Callable[[str], str]) -> None:
    path = ctx.acc("Offline") / "accuracy.txt"
    path.write_text(transform(path.read_text()))


def _untruncated(ctx: Ctx) -> None:
    log = ctx.acc("Offline") / "mlperf_log_accuracy.json"
    original = ctx.root.parent / "originals" / SYS / BENCH / "Offline" / "accuracy" / "mlperf_log_accuracy.json"
    entries = json.loads(original.read_text())
    log.write_text(json.dumps(entries * 4, indent=0))
    assert log.stat().st_size > 10240


def _numpy2(ctx: Ctx) -> None:
    text = (ctx.acc("Offline") / "accuracy.txt").read_text()
    for key in ("rouge1", "rouge2", "rougeL", "rougeLsum", "tokens_per_sample"):
        text = _wrap(text, key)
    (ctx.acc("Offline") / "accuracy.txt").write_text(text)


def _wrap(text: str, key: str) -> str:
    head, sep, tail = text.partition(f"'{key}': ")
    value, comma, rest = tail.partition(",") if "," in tail.split("}")[0] else tail.partition("}")
    return f"{head}{sep}np.float64({value}){comma}{rest}"


def _remove_server(ctx: Ctx) -> None:
    shutil.rmtree(ctx.scenario("Server"))
    measurements = ctx.tree.measurements(SYS, BENCH, "Server")
    if measurements.exists():
        shutil.rmtree(measurements)
    compliance = ctx.org / "compliance"
    if compliance.exists():
        shutil.rmtree(compliance)


def _rename_benchmark(ctx: Ctx, mapping: bool) -> None:
    custom = "llama2-70b-custom"
    for base in ("results", "measurements"):
        path = ctx.org / base / SYS / BENCH
        if path.exists():
            path.rename(path.with_name(custom))
    code = ctx.org / ctx.tree.layout.code_dir / BENCH
    code.rename(code.with_name(custom))
    if mapping:
        (ctx.org / "model_mapping.json").write_text(json.dumps({custom: BENCH}))


def _drop_measurement_key(ctx: Ctx) -> None:
    for scenario in ("Offline", "Server"):
        path = ctx.measurements_json(scenario)
        data = json.loads(path.read_text())
        del data["weight_data_types"]
        path.write_text(json.dumps(data))


def _drop_mlperf_conf(ctx: Ctx) -> None:
    for scenario in ("Offline", "Server"):
        (ctx.tree.measurements(SYS, BENCH, scenario) / "mlperf.conf").unlink(missing_ok=True)


def _empty_dir(ctx: Ctx) -> None:
    (ctx.org / "systems" / "empty").mkdir()


def _relative_link(ctx: Ctx) -> None:
    """A link to a sibling under an allowed name: fine on disk, broken from the root where the checker looks."""
    (ctx.perf("Offline").parent / "mlperf_log_trace.json").symlink_to("mlperf_log_summary.txt")


def _lowercase_offline(ctx: Ctx) -> None:
    ctx.scenario("Offline").rename(ctx.scenario("Offline").with_name("offline"))
    measurements = ctx.tree.measurements(SYS, BENCH, "Offline")
    if measurements.exists():
        measurements.rename(measurements.with_name("offline"))


MUTATIONS = [
    Mutation("result_validity INVALID (Offline)",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {"result_validity": "INVALID"}), _f("v5.1")),
    Mutation("early_stopping_met false (Server)",
             lambda c: trees.rewrite_detail(c.perf("Server"), {"early_stopping_met": False}), _f("head")),
    Mutation("min_duration 120000 (Server)",
             lambda c: trees.rewrite_detail(c.perf("Server"), {"effective_min_duration_ms": 120000}),
             _f("v4.1", "v5", "head")),
    Mutation("samples_per_query 2000 (Offline)",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {"effective_samples_per_query": 2000}), TAGS),
    Mutation("equal-issue off",
             lambda c: trees.rewrite_detail(c.perf("Offline"),
                                            {"effective_sample_concatenate_permutation": False}), _f("v5.1")),
    Mutation("TTFT p99 2.1 s (Server)", lambda c: trees.rewrite_detail(
        c.perf("Server"), {"result_first_token_99.00_percentile_latency_ns": 2_100_000_000}), ALL),
    Mutation("requested_use_token_latencies false",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {"requested_use_token_latencies": False}), ALL),
    Mutation("wrong seed", lambda c: trees.rewrite_detail(c.perf("Offline"), {"effective_qsl_rng_seed": 12345}),
             ALL),
    Mutation("LoadGen ERROR in perf log",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {}, error="injected error"), TAGS),
    Mutation("LoadGen ERROR in accuracy log",
             lambda c: trees.rewrite_detail(c.acc("Offline") / "mlperf_log_detail.txt", {},
                                            error="injected error"), _f("v5.1", "head")),
    Mutation("accuracy log not truncated", _untruncated, _f("head")),
    Mutation("no hash= line",
             lambda c: _accuracy_text(c, lambda t: "".join(
                 line for line in t.splitlines(keepends=True) if not line.startswith("hash="))), NONE),
    Mutation("ROUGE below target",
             lambda c: _accuracy_text(c, lambda t: t.replace("'rouge1': ", "'rouge1': 1.0, 'x': ", 1)), NONE),
    Mutation("numpy-2 np.float64 in accuracy.txt", _numpy2, _f("v5.1")),
    Mutation("extra file in accuracy/",
             lambda c: (c.acc("Offline") / "eval.log").write_text("extra\n"), _f("v4.1", "v5")),
    Mutation("extra file in performance/run_1",
             lambda c: (c.perf("Offline").parent / "console.log").write_text("extra\n"), TAGS),
    Mutation(".gitkeep", lambda c: (c.org / "systems" / ".gitkeep").write_text(""), TAGS),
    Mutation("empty dir", _empty_dir, TAGS),
    Mutation("file in root", lambda c: (c.root / "notes.txt").write_text("x\n"), TAGS),
    Mutation("Offline only", _remove_server, _f("v5.1")),
    Mutation("extra unused systems/other.json",
             lambda c: shutil.copyfile(c.system(), c.system().with_name("other.json")), _f("v5.1")),
    Mutation("is_network false (JSON bool)", lambda c: c.edit_system(is_network=False), ALL),
    Mutation("is_network \"false\" (string)", lambda c: c.edit_system(is_network="false"), _f("head")),
    Mutation("framework: 7", lambda c: c.edit_system(framework=7), TAGS),
    Mutation("system_type edge", lambda c: c.edit_system(system_type="edge"), TAGS),
    Mutation("system_type \"datacenter, edge\"", lambda c: c.edit_system(system_type="datacenter, edge"), ALL),
    Mutation("division \"Open\"", lambda c: c.edit_system(division="Open"), TAGS),
    Mutation("cooling empty", lambda c: c.edit_system(cooling=""), ALL),
    Mutation("measurements JSON missing weight_data_types", _drop_measurement_key, ALL),
    Mutation("code/<bench> missing",
             lambda c: shutil.rmtree(c.org / c.tree.layout.code_dir / BENCH), TAGS),
    Mutation("measurements mlperf.conf missing", _drop_mlperf_conf, _f("v4")),
    Mutation("custom benchmark dir without model_mapping.json", lambda c: _rename_benchmark(c, False), ALL),
    Mutation("custom benchmark dir with model_mapping.json", lambda c: _rename_benchmark(c, True), NONE),
    Mutation("relative symbolic link in performance/run_1", _relative_link, TAGS),
    Mutation("accuracy/mlperf_log_detail.txt missing",
             lambda c: (c.acc("Offline") / "mlperf_log_detail.txt").unlink(), _f("v4.1", "v5", "head")),
    Mutation("performance summary log missing",
             lambda c: (c.perf("Offline").parent / "mlperf_log_summary.txt").unlink(), TAGS),
    Mutation("lowercase offline directory", _lowercase_offline, NONE),
    Mutation("code/ (src/) missing entirely",
             lambda c: shutil.rmtree(c.org / c.tree.layout.code_dir), ALL),
    Mutation("qsl_reported_total_count 1000 (accuracy)", lambda c: trees.rewrite_detail(
        c.acc("Offline") / "mlperf_log_detail.txt",
        {"qsl_reported_total_count": 1000, "effective_accuracy_sample_count": 1000}), _f("head")),
]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A passing tree per round: packaged from real runs, then lifted to full length."""
    runs = trees.fake_runs()
    found = {}
    for round_name in ROUNDS:
        out = tmp_path_factory.mktemp(f"baseline-{round_name}") / "tree"
        with pytest.raises(SystemExit) as exit_:
            main(trees.package_args(runs, out, round_name))
        assert exit_.value.code == 0
        trees.lift_to_full_length(out, round_name)
        found[round_name] = out
    return found


def _copy(baseline: Path, tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(baseline, root)
    shutil.copytree(baseline.with_name("tree-originals"), tmp_path / "originals")
    return root


@pytest.mark.parametrize("round_name", ROUNDS)
def test_baseline_tree_passes_our_check(baselines: dict[str, Path], round_name: str) -> None:
    report = check_tree(baselines[round_name], round_name, expected_results=2)
    assert report.failures == []
    assert report.results == 2


@pytest.mark.parametrize("round_name", ROUNDS)
def test_baseline_tree_passes_the_official_checker(baselines: dict[str, Path], round_name: str) -> None:
    checker = trees.export_checker(trees.CHECKER_TAGS[round_name])
    if checker is None:
        pytest.skip(f"no mlcommons/inference git mirror at {trees.MIRROR} (set MLPERF_INFERENCE_GIT)")
    verdict = run_official(baselines[round_name], round_name, checker)
    assert verdict.passed, verdict.log[-3000:]


@pytest.mark.parametrize("round_name", ROUNDS)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_check_fails_a_mutation_for_exactly_the_rounds_the_official_checker_fails(
        baselines: dict[str, Path], tmp_path: Path, mutation: Mutation, round_name: str) -> None:
    ctx = Ctx(_copy(baselines[round_name], tmp_path), round_name)
    mutation.apply(ctx)
    report = check_tree(ctx.root, round_name, expected_results=packaged_scenarios(ctx.root)[1])
    expected_fail = mutation.fails_in(round_name)
    assert (not report.passed) == expected_fail, [(c.name, c.path, c.detail) for c in report.failures]


# The default suite runs these against the official checkers (each catches a rule a round once missed);
# the rest run under `slow`.
QUICK = ("min_duration 120000 (Server)", "relative symbolic link in performance/run_1",
         "accuracy/mlperf_log_detail.txt missing", "performance summary log missing", "lowercase offline directory",
         "code/ (src/) missing entirely")
_OFFICIAL_CASES = [pytest.param(m, id=m.name, marks=() if m.name in QUICK else pytest.mark.slow) for m in MUTATIONS]


def _official_checker(round_name: str) -> Path:
    checker = trees.export_checker(trees.CHECKER_TAGS[round_name])
    if checker is None:
        pytest.skip(f"official checker of {round_name} unavailable: no mirror of mlcommons/inference at "
                    f"{trees.MIRROR} (fetch it, or set MLPERF_INFERENCE_GIT to a clone)")
    return checker


@pytest.mark.parametrize("round_name", ROUNDS)
@pytest.mark.parametrize("mutation", _OFFICIAL_CASES)
def test_submission_check_and_the_official_checker_agree_on_a_mistake(
        baselines: dict[str, Path], tmp_path: Path, mutation: Mutation, round_name: str) -> None:
    """Ours and the round's official checker give the same verdict on the same mutated tree (and the table's)."""
    checker = _official_checker(round_name)
    ctx = Ctx(_copy(baselines[round_name], tmp_path), round_name)
    mutation.apply(ctx)
    ours = check_tree(ctx.root, round_name, expected_results=packaged_scenarios(ctx.root)[1])
    verdict = run_official(ctx.root, round_name, checker)
    assert ours.passed == verdict.passed, ([(c.name, c.path, c.detail) for c in ours.failures], verdict.errors,
                                           verdict.log[-2000:])
    assert verdict.passed != mutation.fails_in(round_name), verdict.log[-3000:]


def test_v6_0_pre_tag_checker_cannot_check_v6_0_so_master_is_authoritative(baselines: dict[str, Path],
                                                                          tmp_path: Path) -> None:
    """v6.0.0pre's script fails even a tree in its own layout (<system>*.json, code/): its tables lack v6.0."""
    checker = trees.export_checker("v6.0.0pre")
    if checker is None:
        pytest.skip(f"no mirror of mlcommons/inference at {trees.MIRROR}")
    ctx = Ctx(_copy(baselines["v6.0"], tmp_path), "v6.0")
    for scenario in ("Offline", "Server"):
        json_path = ctx.measurements_json(scenario)
        shutil.copyfile(json_path, json_path.with_name(f"{SYS}_mlperf-llm-harness_{scenario}.json"))
    shutil.copytree(ctx.org / "src", ctx.org / "code")
    verdict = run_official(ctx.root, "v6.0", checker)
    assert not verdict.passed and verdict.crashed_on_version, verdict.log[-3000:]
    assert "master" in (verdict.known_problem() or "")
    assert check_tree(ctx.root, "v6.0", expected_results=2).passed  # master's layout rules still hold
