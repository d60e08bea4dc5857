"""`submission check`: the official checker's rules for a round, as data, plus the stricter union as warnings.

check_tree() walks open/<submitter>/ like the checker of the round and returns list[Check]; each
FAIL is something that round's official checker fails on (mlperf-rules.md §1-§3, §9), each WARN
something another round's checker (or a reviewer) would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import InputError
from harness.rounds import round_spec
from harness.types import Check, CheckStatus
from submission.layout import RoundLayout, Tree, round_layout
from submission.rules import meta, results, structure
from submission.rules._base import ALL, TAG_SCRIPTS, Findings, family

__all__ = ["ALL", "TAG_SCRIPTS", "CheckReport", "check_tree", "family"]


@dataclass(frozen=True)
class CheckReport:
    """The findings of one `submission check` and how many scenario results would pass."""

    round: str
    checks: list[Check]
    results: int

    @property
    def failures(self) -> list[Check]:
        """The FAIL findings."""
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        """True when the round's official checker would accept the tree."""
        return not self.failures


def check_tree(root: Path, round_name: str, expected_results: int | None = None) -> CheckReport:
    """Every finding for the tree at root (the directory holding open/)."""
    layout = round_layout(round_name)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory; expected the submission root that contains open/")
    f = Findings(root, round_name)
    counted = 0
    for org in structure.check_root(f):
        structure.check_names(f, org)
        counted += _check_submitter(f, org, layout)
    if expected_results is not None and counted != expected_results:
        f.add("result-count", root, f"Open Results={counted}; expected {expected_results}",
              "fix the FAIL findings above; each failing scenario is a NoResults line in the official checker")
    elif counted == 0:
        f.add("result-count", root, "Open Results=0: the official checker says OK for a tree with no results",
              "package runs with `submission package` and check that directory")
    else:
        f.passed("result-count", root, f"Open Results={counted}")
    return CheckReport(round_name, f.checks, counted)


def _check_submitter(f: Findings, org: Path, layout: RoundLayout) -> int:
    tree = Tree(f.root, org.name, layout)
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
    scenarios = sorted(p for p in bench_dir.iterdir() if p.is_dir())
    names = {p.name for p in scenarios}
    if round_spec(f.round).needs_server_or_interactive and not {"Server", "Interactive"} & names:
        f.add("server-or-interactive", bench_dir, "the v5.1 checker needs a Server or an Interactive result "
              "for every benchmark, even in open", "package a Server (or Interactive) run too",
              frozenset({"v5"}))
    passed = 0
    system_json = tree.system_json(system)
    for scenario in scenarios:
        results.check_scenario(f, scenario, benchmark)
        where = tree.measurements(system, bench_dir.name, scenario.name)
        meta.check_measurements(f, where, tree.layout, tree.org, (system, bench_dir.name, scenario.name))
        ok = not (f.failed_under(scenario) or f.failed_under(where) or f.failed_under(system_json)
                  or _code_failed(f, tree, bench_dir.name))
        status = CheckStatus.PASS if ok else CheckStatus.FAIL
        f.checks.append(Check("scenario-result", status, f"{system}/{bench_dir.name}/{scenario.name}", "",
                              f._rel(scenario)))
        passed += ok
    if any(c.failed and c.name == "server-or-interactive" and c.path == f._rel(bench_dir) for c in f.checks):
        return 0
    return passed


def _code_failed(f: Findings, tree: Tree, bench_dir: str) -> bool:
    code = tree.org / tree.layout.code_dir
    return f.failed_under(code / bench_dir) or any(c.failed and c.path == f._rel(code) for c in f.checks)

