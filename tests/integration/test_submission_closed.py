"""Closed-division trees: a clean tree per round that both checkers accept, and a mutation table on which
`submission check` and the round's official checker (--version given) must agree row by row.

The baseline is packaged with `submission package --division closed` from real fake-backend runs (performance,
accuracy, TEST06 per scenario) and lifted to full length by trees.lift_to_full_length, which for closed trees
also writes the reference accuracy (the fake's answers on the smoke set cannot meet the targets). Without the
mirror of mlcommons/inference the official half skips with the reason; our half still runs.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.benchmarks.registry import benchmark_facts
from harness.rounds import ROUNDS as ALL_ROUNDS
from harness.rounds import round_spec
from submission.checker import packaged_results, run_official
from submission.cli import main
from submission.layout import Tree, round_layout
from submission.rules import check_tree
from tests.unit.submission import trees

ROUNDS = ("v5.1", "v6.0", "v6.1")
SYS = trees.SYSTEM.stem
BENCH = "llama2-70b-99.9"


@dataclass(frozen=True)
class Ctx:
    """A mutable copy of a closed baseline tree."""

    root: Path
    round: str

    @property
    def tree(self) -> Tree:
        return Tree(self.root, "MyOrg", round_layout(self.round), "closed")

    def perf(self, scenario: str) -> Path:
        return self.tree.performance(SYS, BENCH, scenario) / "mlperf_log_detail.txt"

    def accuracy_txt(self, scenario: str) -> Path:
        return self.tree.accuracy(SYS, BENCH, scenario) / "accuracy.txt"

    def test06(self, scenario: str) -> Path:
        return self.tree.compliance(SYS, BENCH, scenario)


def _below_target(ctx: Ctx) -> None:
    rouge1 = benchmark_facts(BENCH, ctx.round).metric("rouge1")
    assert rouge1 is not None
    trees.lift_accuracy(ctx.accuracy_txt("Offline"), benchmark_facts(BENCH, ctx.round).metrics,
                        {"rouge1": round(rouge1.lower - 0.01, 4)})


def _tokens_outside(ctx: Ctx) -> None:
    tokens = benchmark_facts(BENCH, ctx.round).metric("tokens_per_sample")
    assert tokens is not None and tokens.upper is not None
    trees.lift_accuracy(ctx.accuracy_txt("Server"), benchmark_facts(BENCH, ctx.round).metrics,
                        {"tokens_per_sample": round(tokens.upper + 1.0, 1)})


def _test06_failing(ctx: Ctx) -> None:
    verify = ctx.test06("Server") / "verify_accuracy.txt"
    verify.write_text(verify.read_text().replace("EOS check pass: True", "EOS check pass: False"))


def _remove_server(ctx: Ctx) -> None:
    for path in (ctx.tree.scenario(SYS, BENCH, "Server"), ctx.tree.measurements(SYS, BENCH, "Server"),
                 ctx.test06("Server").parent):
        if path.exists():
            shutil.rmtree(path)


def _add_llama2_70b_99(ctx: Ctx) -> None:
    """The 99.9 results copied as llama2-70b-99 (they meet its lower targets): valid until v6.1 dropped it."""
    org = ctx.tree.org
    for base in ("results", "measurements", "compliance"):
        source = org / base / SYS / BENCH
        if source.exists():
            shutil.copytree(source, source.with_name("llama2-70b-99"))
    code = org / ctx.tree.layout.code_dir / BENCH
    shutil.copytree(code, code.with_name("llama2-70b-99"))


def _previous_round_seeds(ctx: Ctx) -> None:
    seeds = round_spec(ALL_ROUNDS[ALL_ROUNDS.index(ctx.round) - 1]).seeds
    trees.rewrite_detail(ctx.perf("Offline"), {"effective_qsl_rng_seed": seeds.qsl,
                                               "effective_sample_index_rng_seed": seeds.sample_index,
                                               "effective_schedule_rng_seed": seeds.schedule})


def _edit_system(ctx: Ctx, **values: object) -> None:
    path = ctx.tree.system_json(SYS)
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}, indent=2))


def _drop_hash(ctx: Ctx) -> None:
    path = ctx.accuracy_txt("Offline")
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True)
                            if not line.startswith("hash=")))


@dataclass(frozen=True)
class Mutation:
    """One change to a clean closed tree and the rounds whose official checker fails it."""

    name: str
    apply: Callable[[Ctx], None]
    fails: frozenset[str]


_ALL = frozenset(ROUNDS)
MUTATIONS = [
    Mutation("ROUGE1 below the target (Offline)", _below_target, _ALL),
    Mutation("tokens per sample above the window (Server)", _tokens_outside, _ALL),
    Mutation("TEST06 missing (Offline)", lambda c: shutil.rmtree(c.test06("Offline")), _ALL),
    Mutation("TEST06 failing (Server)", _test06_failing, _ALL),
    Mutation("neither Server nor Interactive", _remove_server, _ALL),
    Mutation("a llama2-70b-99 folder", _add_llama2_70b_99, frozenset({"v6.1"})),
    Mutation("the previous round's seeds (Offline)", _previous_round_seeds, _ALL),
    Mutation("short run: min duration 300 s (Offline)",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {"effective_min_duration_ms": 300000}), _ALL),
    Mutation("system description's division open", lambda c: _edit_system(c, division="open"), _ALL),
    Mutation("no hash= line (Offline)", _drop_hash, _ALL),
    Mutation("samples_per_query 2000 (Offline)",
             lambda c: trees.rewrite_detail(c.perf("Offline"), {"effective_samples_per_query": 2000}), _ALL),
    Mutation("calibration.md missing", lambda c: c.tree.calibration().unlink(), frozenset({"v5.1"})),
]


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A clean closed tree per round: packaged from real runs with TEST06, then lifted to full length."""
    runs = trees.fake_runs()
    test06 = [trees.compliance_run(trees.scratch("test06") / s, s) for s in ("Offline", "Server")]
    found = {}
    for round_name in ROUNDS:
        out = tmp_path_factory.mktemp(f"closed-{round_name}") / "tree"
        args = trees.package_args(runs, out, round_name, "--division", "closed", *map(str, test06))
        args[args.index("--system") + 1] = str(trees.system_file("closed"))
        with pytest.raises(SystemExit) as exit_:
            main(args)
        assert exit_.value.code == 0
        trees.lift_to_full_length(out, round_name)
        found[round_name] = out
    return found


def _copy(baseline: Path, tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    shutil.copytree(baseline, root)
    return root


def _official(round_name: str) -> Path:
    checker = trees.export_checker(trees.CHECKER_TAGS[round_name])
    if checker is None:
        pytest.skip(f"official checker of {round_name} unavailable: no mirror of mlcommons/inference at "
                    f"{trees.MIRROR} (fetch it, or set MLPERF_INFERENCE_GIT to a clone)")
    return checker


@pytest.mark.parametrize("round_name", ROUNDS)
def test_clean_closed_tree_passes_our_check(baselines: dict[str, Path], round_name: str) -> None:
    root = baselines[round_name]
    report = check_tree(root, round_name, expected_results=2)
    assert report.failures == [], [(c.name, c.path, c.detail) for c in report.failures]
    assert report.by_division == {"closed": 2}
    assert (root / "closed/MyOrg/calibration.md").is_file() and not (root / "open").exists()


@pytest.mark.parametrize("round_name", ROUNDS)
def test_clean_closed_tree_passes_the_official_checker(baselines: dict[str, Path], round_name: str) -> None:
    verdict = run_official(baselines[round_name], round_name, _official(round_name))
    assert verdict.passed, verdict.log[-3000:]
    assert "--version" in verdict.command and round_name in verdict.command
    assert (verdict.closed_results, verdict.open_results, verdict.no_results) == (2, 0, 0)
    assert verdict.errors == [], verdict.errors


@pytest.mark.parametrize("round_name", ROUNDS)
@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_submission_check_and_the_official_checker_agree_on_a_closed_mistake(
        baselines: dict[str, Path], tmp_path: Path, mutation: Mutation, round_name: str) -> None:
    ctx = Ctx(_copy(baselines[round_name], tmp_path), round_name)
    mutation.apply(ctx)
    expected = sum(packaged_results(ctx.root)[1].values())
    ours = check_tree(ctx.root, round_name, expected_results=expected)
    assert ours.passed != (round_name in mutation.fails), [(c.name, c.path, c.detail) for c in ours.failures]
    verdict = run_official(ctx.root, round_name, _official(round_name))
    assert ours.passed == verdict.passed, ([(c.name, c.path, c.detail) for c in ours.failures], verdict.errors,
                                           verdict.log[-2000:])
