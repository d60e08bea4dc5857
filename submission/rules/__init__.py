"""`submission check`: the official checker's rules for a round, as data, plus the stricter union as warnings.

check_tree() walks open/<submitter>/ and closed/<submitter>/ like the checker of the round and returns
list[Check]; each FAIL is something that round's official checker fails on (mlperf-rules.md §1-§3, §9),
each WARN something another round's checker (or a reviewer) would refuse. Closed submitters also get the
closed division's rules (rules/closed.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.benchmarks.registry import benchmark_facts
from harness.errors import InputError
from harness.rounds import round_spec
from harness.types import Check, CheckStatus
from submission.layout import RoundLayout, Tree, round_layout
from submission.rules import closed, meta, results, structure
from submission.rules._base import ALL, TAG_SCRIPTS, Findings, family

__all__ = ["ALL", "TAG_SCRIPTS", "CheckReport", "check_tree", "family"]


@dataclass(frozen=True)
class CheckReport:
    """The findings of one `submission check` and how many scenario results would pass."""

    round: str
    checks: list[Check]
    results: int
    by_division: dict[str, int] = field(default_factory=dict)  # scenario results that pass, per division

    @property
    def failures(self) -> list[Check]:
        """The FAIL findings."""
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        """True when the round's official checker would accept the tree."""
        return not self.failures

    def counts(self) -> str:
        """`Closed Results=N, Open Results=M` as the official checker prints them."""
        return ", ".join(f"{d.capitalize()} Results={self.by_division.get(d, 0)}" for d in ("closed", "open"))


def check_tree(root: Path, round_name: str, expected_results: int | None = None) -> CheckReport:
    """Every finding for the tree at root (the directory holding open/ or closed/)."""
    layout = round_layout(round_name)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory; expected the submission root that contains open/ or closed/")
    f = Findings(root, round_name)
    by_division: dict[str, int] = {}
    for division, org in structure.check_root(f):
        f.division = division
        structure.check_names(f, org)
        by_division[division] = by_division.get(division, 0) + _check_submitter(f, org, layout)
    counted = sum(by_division.values())
    report = CheckReport(round_name, f.checks, counted, by_division)
    if expected_results is not None and counted != expected_results:
        f.add("result-count", root, f"{report.counts()}; expected {expected_results} in all",
              "fix the FAIL findings above; each failing scenario is a NoResults line in the official checker")
    elif counted == 0:
        f.add("result-count", root, "Results=0: the official checker says OK for a tree with no results",
              "package runs with `submission package` and check that directory")
    else:
        f.passed("result-count", root, report.counts())
    return report


def _check_submitter(f: Findings, org: Path, layout: RoundLayout) -> int:
    tree = Tree(f.root, org.name, layout, f.division)
    results_dir = org / "results"
    if not results_dir.is_dir():
        f.add("no-results-dir", org, "no results/ directory: the checker skips this submitter silently",
              "add results/<system>/<benchmark>/<scenario>")
        return 0
    systems = sorted(p for p in results_dir.iterdir() if p.is_dir())
    for system in systems:
        system_json = tree.system_json(system.name)
        if system_json.is_file():
            meta.check_system(f, system_json, org.name)
        else:
            f.add("system-json-missing", system_json, f"no system description for results/{system.name}",
                  f"add systems/{system.name}.json (`submission system detect`)")
    if round_spec(layout.name).checks_unused_systems:
        meta.check_unused(f, org, layout, {s.name for s in systems})
    closed.check_calibration(f, org)
    passed = 0
    for system in systems:
        for bench_dir in sorted(p for p in system.iterdir() if p.is_dir()):
            passed += _check_benchmark(f, tree, system.name, bench_dir)
    if f.family in ("v4", "v5") and any(c.failed and c.path.startswith(f._rel(org))
                                        and c.name in _SUBMITTER_WIDE for c in f.checks):
        return 0
    return passed


_SUBMITTER_WIDE = {"empty-dir", "dot-name", "space-in-name", "pycache", "symlink", "file-size"}


def _check_benchmark(f: Findings, tree: Tree, system: str, bench_dir: Path) -> int:
    benchmark = meta.benchmark_name(f, tree.org, bench_dir)
    if benchmark is None:
        return 0
    facts = benchmark_facts(benchmark, f.round)
    scenarios = sorted(p for p in bench_dir.iterdir() if p.is_dir())
    names = {p.name for p in scenarios}
    system_type = _system_type(tree, system)
    scenarios_ok = closed.check_required_scenarios(f, bench_dir, facts, names, system_type)
    if round_spec(f.round).needs_server_or_interactive and not {"Server", "Interactive"} & names:
        f.add("server-or-interactive", bench_dir, "the v5.1 checker needs a Server or an Interactive result "
              "for every benchmark, even in open", "package a Server (or Interactive) run too",
              frozenset({"v5"}))
    passed = 0
    system_json = tree.system_json(system)
    for scenario in scenarios:
        results.check_scenario(f, scenario, facts, system_type)
        closed.check_compliance(f, tree, (system, bench_dir.name, scenario.name), facts)
        where = tree.measurements(system, bench_dir.name, scenario.name)
        meta.check_measurements(f, where, tree.layout, tree.org, (system, bench_dir.name, scenario.name))
        compliance = [tree.compliance(system, bench_dir.name, scenario.name, test) for test in facts.compliance_tests]
        ok = not (f.failed_under(scenario) or f.failed_under(where) or f.failed_under(system_json)
                  or any(f.failed_under(c) for c in compliance) or _code_failed(f, tree, bench_dir.name)
                  or _calibration_failed(f, tree))
        status = CheckStatus.PASS if ok else CheckStatus.FAIL
        f.checks.append(Check("scenario-result", status, f"{system}/{bench_dir.name}/{scenario.name}", "",
                              f._rel(scenario)))
        passed += ok
    if not scenarios_ok or any(c.failed and c.name == "server-or-interactive" and c.path == f._rel(bench_dir)
                               for c in f.checks):
        return 0
    return passed


def _system_type(tree: Tree, system: str) -> str:
    """The system description's system_type ("datacenter" when it cannot be read: meta reports why)."""
    try:
        value = json.loads(tree.system_json(system).read_text()).get("system_type")
    except (OSError, ValueError, AttributeError):
        return "datacenter"
    return value if isinstance(value, str) and value else "datacenter"


def _calibration_failed(f: Findings, tree: Tree) -> bool:
    return any(c.failed and c.name == "calibration" and c.path == f._rel(tree.calibration()) for c in f.checks)


def _code_failed(f: Findings, tree: Tree, bench_dir: str) -> bool:
    code = tree.org / tree.layout.code_dir
    return f.failed_under(code / bench_dir) or any(c.failed and c.path == f._rel(code) for c in f.checks)

