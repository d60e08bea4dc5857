"""Rules of the closed division: accuracy targets, required scenarios, compliance tests, calibration notes.

Each rule reads the benchmark's facts as the round states them (harness.benchmarks) and compares exactly as
the round's official checker does (tools/submission/submission_checker/checks/*.py and loader.py at HEAD,
the v4.x/v5.x tag scripts' check_accuracy_dir, check_compliance_dir and required-scenario loop). In closed
they fail in every family; in open the same findings are warnings (open accepts them, reviewers read them).
`accuracy_problems` is shared with the packager, so it refuses exactly what the checker would fail.
"""

from __future__ import annotations

import re
from pathlib import Path

from compliance.results import result_passes, verify_file_name
from harness.benchmarks.facts import BenchmarkFacts, Metric
from submission.layout import Tree
from submission.rules._base import Findings

__all__ = ["accuracy_problems", "check_accuracy_targets", "check_calibration", "check_compliance",
           "check_required_scenarios", "metric_values"]

# The checker's ACC_PATTERN shapes: ROUGE values may be quoted from v5.0 (`\s+'?`); plain numbers elsewhere.
_QUOTED = r".*'{0}':\s+'?([\d.]+)'?.*"
_PLAIN = r".*'{0}':\s([\d.]+).*"
_QUOTED_PATTERNS = frozenset({"ROUGE1", "ROUGE2", "ROUGEL", "ROUGELSUM"})
_HASH = re.compile(r"^hash=([\w\d]+)$")
# Only the v5.1 tag script requires <division>/<submitter>/calibration.md (or documentation/calibration.md)
# in closed; v4.x, v5.0 and HEAD do not read it (measured on the scripts of the mirror's tags).
CALIBRATION_ROUNDS = ("v5.1",)
CALIBRATION_FILES = ("calibration.md", "documentation/calibration.md")


def _regex(metric: Metric, family: str) -> re.Pattern[str]:
    shape = _QUOTED if metric.pattern in _QUOTED_PATTERNS and family != "v4" else _PLAIN
    return re.compile(shape.format(re.escape(metric.key)))


def metric_values(facts: BenchmarkFacts, lines: list[str], family: str) -> dict[str, list[float]]:
    """Every value of each metric the checker reads from accuracy.txt lines (until it has all and a hash)."""
    found: dict[str, list[float]] = {m.key: [] for m in facts.metrics}
    seen_hash = False
    for line in lines:
        for metric in facts.metrics:
            match = _regex(metric, family).match(line)
            if match:
                found[metric.key].append(float(match.group(1)))
        seen_hash = seen_hash or bool(_HASH.match(line))
        if seen_hash and all(found[m.key] for m in facts.metrics if m.lower is not None):
            break  # the checker stops reading here (it waits for the targets, not for the upper limits)
    return found


def accuracy_problems(facts: BenchmarkFacts, lines: list[str], family: str) -> list[str]:
    """Why accuracy.txt misses the benchmark's targets or upper limits, as the checker compares (one line each)."""
    problems = []
    for metric in facts.metrics:
        values = metric_values(facts, lines, family)[metric.key]
        lower = metric.lower
        if not values and lower is not None:  # an upper limit alone never fails when it is not printed
            problems.append(f"{metric.key} cannot be read from accuracy.txt; the checker needs it "
                            f"(>= {lower:g})")
        for value in values:
            if lower is not None and not value >= lower:
                problems.append(f"{metric.key} {value:g} is below the {facts.name} target {lower:g} "
                                f"({metric.factor:g} x {metric.reference:g})")
            upper = metric.upper
            if upper is not None and value > upper:
                problems.append(f"{metric.key} {value:g} is above the {facts.name} upper limit {upper:g} "
                                f"({metric.upper_factor:g} x {metric.reference:g})")
    return list(dict.fromkeys(problems))


def check_accuracy_targets(f: Findings, path: Path, facts: BenchmarkFacts, lines: list[str]) -> None:
    """Targets and upper limits of every metric: closed fails on a miss, open only warns."""
    for problem in accuracy_problems(facts, lines, f.family):
        f.add("accuracy-target", path, problem,
              "closed needs every target met and tokens per sample inside the window; rerun with the reference "
              "model and generation settings" if f.closed else "closed needs it; open accepts it",
              f.unless_open())


def check_required_scenarios(f: Findings, bench_dir: Path, facts: BenchmarkFacts, names: set[str],
                             system_type: str) -> bool:
    """Closed: the required scenarios and one of the optional latency scenarios; False when they are missing."""
    if not f.closed:
        return True
    required = facts.required_scenarios.get(system_type, ())
    one_of = facts.one_of_scenarios.get(system_type, ())
    ok = True
    for scenario in required:
        if scenario not in names:
            f.add("closed-scenarios", bench_dir, f"{facts.name} in closed needs {scenario} (round {f.round} "
                  f"requires {', '.join(required)}{' plus one of ' + ' or '.join(one_of) if one_of else ''})",
                  f"package a {scenario} performance, accuracy and "
                  f"{' and '.join(facts.compliance_tests)} run too")
            ok = False
    if one_of and not set(one_of) & names:
        f.add("closed-scenarios", bench_dir, f"{facts.name} in closed needs one of {', '.join(one_of)} "
              f"beside {', '.join(required)}; found {', '.join(sorted(names)) or 'none'}",
              f"package a {' or '.join(one_of)} run too")
        ok = False
    allowed = {s.lower() for s in (*required, *one_of)}
    for name in sorted(names):
        if name.lower() not in allowed:
            f.add("closed-scenarios", bench_dir / name, f"{name} is neither required nor optional for "
                  f"{facts.name} in closed", f"remove it; closed allows {', '.join(sorted(allowed))}")
            ok = False
    return ok


def check_compliance(f: Findings, tree: Tree, names: tuple[str, str, str], facts: BenchmarkFacts) -> None:
    """Each compliance test of the benchmark where the round's layout puts it: closed needs it present and
    passing as the checker reads it (TEST06: its three lines in verify_accuracy.txt; TEST07: 'TEST PASS' in
    verify_accuracy.txt; TEST09: 'TEST PASS' in verify_output_len.txt); open never needs it, so there a failing
    one only warns."""
    system, bench_dir, scenario = names
    for test in facts.compliance_tests:
        where = tree.compliance(system, bench_dir, scenario, test)
        verify = where / verify_file_name(test)
        if not where.is_dir() or not verify.is_file():
            if f.closed:
                f.add("compliance", verify, f"{test} is missing ({f._rel(verify)}); closed needs it in every "
                      "scenario", f"run `compliance run {test} --scenario {scenario}` and package its run dir")
            continue
        if not result_passes(test, verify.read_text(errors="replace")):
            f.add("compliance", verify, f"{test} verification did not pass ({FAILED[test]})", FIXES[test],
                  f.unless_open())


FAILED = {
    "TEST06": "the checker needs 'First token check pass: True' or Skipped, 'EOS check pass: True' and "
              "'Sample length check pass: True'",
    "TEST07": "the checker needs 'TEST PASS': the performance-mode accuracy is below test07_accuracy_threshold",
    "TEST09": "the checker needs 'TEST PASS': the mean output length is outside the TEST09 bounds",
}
FIXES = {
    "TEST06": "fix the SUT's token reporting and rerun the compliance test",
    "TEST07": "make the performance configuration answer as accurately as the accuracy run, then rerun "
              "`compliance run TEST07`",
    "TEST09": "check the output cap and stop tokens of the performance configuration, then rerun "
              "`compliance run TEST09`",
}


def check_calibration(f: Findings, org: Path) -> None:
    """Closed: the calibration notes (the v5.1 script requires calibration.md; the rules ask for them)."""
    if not f.closed or any((org / name).is_file() for name in CALIBRATION_FILES):
        return
    fails = frozenset({f.family}) if f.round in CALIBRATION_ROUNDS else frozenset()
    f.add("calibration", org / CALIBRATION_FILES[0], "no calibration.md (or documentation/calibration.md): the "
          "v5.1 checker fails a closed submitter without it",
          "submission package --division closed writes it; or describe the calibration of quantized weights there",
          fails)
