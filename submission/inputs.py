"""Run directories given to `submission package`: read, check for completeness, group per benchmark and scenario.

Each (benchmark, scenario) needs one performance run and one accuracy run of the round; a compliance
run of each of the benchmark's tests (TEST06; gpt-oss-120b: TEST07 and TEST09) is optional in open and required in
closed. Whatever makes a run unsubmittable (fake backend, shortened, aborted, failed, a test not passing; in closed
also a missed accuracy target, a deviation from the reference, a missing scenario, ...) is collected as a reason, each
naming the run directory. Benchmark names, the rounds that carry them and every number come from the
benchmark facts (harness.benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compliance.results import VERIFY_FILE, read_result, verify_file_name
from harness import artifacts
from harness.artifacts import Manifest, ReasonCode, RunArtifacts
from harness.benchmarks.facts import BenchmarkFacts
from harness.benchmarks.registry import benchmark_facts, check_in_round
from harness.errors import ConfigError, InputError
from harness.logs import parse_detail_log
from harness.rounds import round_spec
from harness.safe_paths import contained, not_there
from harness.types import RunStatus
from submission import provenance
from submission.layout import BENCHMARKS, TEST06, RoundLayout
from submission.measurements import run_config
from submission.rules.closed import accuracy_problems
from submission.rules.results import MIN_DURATION_MS

__all__ = ["VERIFY_TXT", "CollectedRuns", "RunInput", "ScenarioRuns", "closed_reasons", "collect_runs",
           "lower_target_variants", "read_run"]

VERIFY_TXT = VERIFY_FILE  # one definition (compliance.results)


@dataclass(frozen=True)
class RunInput:
    """One run directory and its manifest."""

    path: Path
    manifest: Manifest

    def file(self, name: str) -> Path:
        """A file of the run directory."""
        return self.path / name


@dataclass
class ScenarioRuns:
    """The runs that fill one results/<sys>/<benchmark>/<scenario> dir."""

    benchmark: str
    scenario: str
    performance: RunInput | None = None
    accuracy: RunInput | None = None
    compliance: dict[str, RunInput] = field(default_factory=dict)  # audit test (TEST06, TEST07, TEST09) -> its run

    @property
    def test06(self) -> RunInput | None:
        """The TEST06 run, if given."""
        return self.compliance.get(TEST06)

    def runs(self) -> list[tuple[str, RunInput]]:
        """(role, run) pairs present, in README order: performance, accuracy, then each test."""
        pairs = [("Performance", self.performance), ("Accuracy", self.accuracy),
                 *sorted(self.compliance.items())]
        return [(role, run) for role, run in pairs if run is not None]


@dataclass
class CollectedRuns:
    """Grouped runs plus every reason they are not submittable."""

    scenarios: list[ScenarioRuns]
    unsubmittable: list[str] = field(default_factory=list)


def read_run(path: Path) -> RunInput:
    """A run directory with its validated manifest."""
    if not path.is_dir():
        raise InputError(not_there(path, "a run directory written by `harness run`"),
                         hint="pass directories written by `harness run`")
    return RunInput(path, RunArtifacts(path).read_manifest())


def _role(run: RunInput) -> str:
    """performance, accuracy, or the audit test the run is for (TEST06, TEST07, TEST09)."""
    test = run.manifest.compliance_test
    if test:
        tests = benchmark_facts(run.manifest.benchmark).compliance_tests
        if test not in tests:
            raise InputError(f"{run.path}: compliance test {test!r} is not one of {run.manifest.benchmark}'s; "
                             f"it uses {', '.join(tests)}",
                             hint=f"pass the runs of `compliance run {' / '.join(tests)}` for this benchmark")
        return str(test)
    return "accuracy" if run.manifest.mode == "accuracy" else "performance"


def _given(group: ScenarioRuns, role: str) -> RunInput | None:
    return group.compliance.get(role) if role.startswith("TEST") else getattr(group, role)


def collect_runs(paths: list[Path], layout: RoundLayout, both_benchmarks: bool) -> CollectedRuns:
    """Group run dirs by (benchmark, scenario); refuse duplicates, wrong rounds and missing files (the closed
    division's own reasons: closed_reasons)."""
    groups: dict[tuple[str, str], ScenarioRuns] = {}
    reasons: list[str] = []
    seen: dict[Path, Path] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise InputError(f"run directory {path} is given twice (also as {seen[key]}); expected each run once",
                             hint="pass every run directory once")
        seen[key] = path
    for run in (read_run(p) for p in paths):
        reasons += _check_round(run, layout)
        role = _role(run)
        group = groups.setdefault((run.manifest.benchmark, run.manifest.scenario),
                                  ScenarioRuns(run.manifest.benchmark, run.manifest.scenario))
        given = _given(group, role)
        if given is not None:
            raise InputError(f"two {role} runs for {group.benchmark} {group.scenario}: "
                             f"{given.path} and {run.path}; expected one",
                             hint="pass exactly one run directory per benchmark, scenario and mode")
        if role.startswith("TEST"):
            group.compliance[role] = run
        else:
            setattr(group, role, run)
        _check_files(run, role, layout)
        reasons += _reasons(run, role)
    if both_benchmarks:
        _mirror_lower_targets(groups, layout.name)
    for group in groups.values():
        _check_complete(group)
    ordered = [groups[key] for key in sorted(groups)]
    return CollectedRuns(ordered, list(dict.fromkeys(reasons)))


def _check_round(run: RunInput, layout: RoundLayout) -> list[str]:
    manifest = run.manifest
    if manifest.benchmark not in BENCHMARKS:
        raise InputError(f"{run.path}: benchmark {manifest.benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    try:
        check_in_round(manifest.benchmark, layout.name)
    except ConfigError as err:
        raise ConfigError(f"{run.path}: {err.message}", hint=err.hint) from None
    if manifest.scenario not in layout.scenarios:
        raise InputError(f"{run.path}: scenario {manifest.scenario} does not exist in round {layout.name}; "
                         f"expected one of {', '.join(layout.scenarios)}")
    if manifest.round != layout.name:
        return [f"{run.path}: run for round {manifest.round} (its LoadGen seeds and config), packaged as "
                f"{layout.name}; package it with --round {manifest.round} or rerun it for {layout.name}"]
    return []


def _required_files(role: str, layout: RoundLayout) -> list[str]:
    if role.startswith("TEST"):
        return [f"{role}/{verify_file_name(role)}", f"{role}/accuracy/{artifacts.ACCURACY_LOG}"]
    needed = [artifacts.SUMMARY, artifacts.DETAIL]
    if role == "accuracy":
        needed += [artifacts.ACCURACY_LOG, artifacts.ACCURACY_TXT]
    else:
        needed += [artifacts.USER_CONF] + ([artifacts.MLPERF_CONF] if layout.needs_mlperf_conf else [])
    return needed


def _check_files(run: RunInput, role: str, layout: RoundLayout) -> None:
    for name in _required_files(role, layout):
        contained(run.path, name)  # a link or '..' out of the run directory is refused before anything is copied
    missing = [name for name in _required_files(role, layout) if not run.file(name).is_file()]
    if missing:
        raise InputError(f"{run.path} ({role} run, status {run.manifest.status.value}) lacks "
                         f"{', '.join(missing)}; a {role} run of round {layout.name} writes them",
                         hint="rerun it with `harness run`; an accuracy run must finish scoring")


def _reasons(run: RunInput, role: str) -> list[str]:
    manifest = run.manifest
    found = []
    if manifest.status is not RunStatus.COMPLETED:
        found.append(f"{run.path}: the run is {manifest.status.value}")
    if role.startswith("TEST"):
        if not read_result(run.path, role).passed:
            found.append(f"{run.path}: {role} verification did not pass")
        return found
    if not manifest.submittable:
        found += [f"{run.path}: {text}" for text in manifest.reason_texts(leave_out=(ReasonCode.NOT_COMPLETED,))]
    problem = manifest.problem()
    if problem is not None and role == "performance":
        found.append(f"{run.path}: {problem} (result_validity {manifest.result.result_validity or 'missing'}): an "
                     "INVALID result")
    return found


def lower_target_variants(facts: BenchmarkFacts) -> list[str]:
    """The benchmarks a run of `facts` also qualifies for: same family, every target at or below its own
    (llama2-70b-99.9 -> llama2-70b-99), whatever the round."""
    found = []
    for name in BENCHMARKS:
        other = benchmark_facts(name)
        if name == facts.name or other.family != facts.family:
            continue
        mine = {m.key: m.lower for m in facts.metrics if m.lower is not None}
        if all(m.key in mine and m.lower <= mine[m.key] for m in other.metrics if m.lower is not None):
            found.append(name)
    return found


def _mirror_lower_targets(groups: dict[tuple[str, str], ScenarioRuns], round_name: str) -> None:
    """--both-benchmarks: a run meeting the stricter targets also fills each lower-target variant of the round;
    a variant the round does not carry (llama2-70b-99 in v6.1) is refused with check_in_round's reason."""
    for (benchmark, scenario), group in list(groups.items()):
        for other in lower_target_variants(benchmark_facts(benchmark)):
            try:
                check_in_round(other, round_name)
            except ConfigError as err:
                raise ConfigError(f"--both-benchmarks: {err.message}",
                                  hint=f"package without --both-benchmarks ({benchmark} only)") from None
            if (other, scenario) not in groups:
                groups[(other, scenario)] = ScenarioRuns(other, scenario, group.performance, group.accuracy,
                                                         dict(group.compliance))


def _check_complete(group: ScenarioRuns) -> None:
    for role in ("performance", "accuracy"):
        if getattr(group, role) is None:
            raise InputError(f"no {role} run for {group.benchmark} {group.scenario}; each scenario needs one "
                             "performance and one accuracy run",
                             hint=f"add the run dir of `harness run --mode {role} --scenario {group.scenario}`")


def closed_reasons(collected: CollectedRuns, layout: RoundLayout, system_type: str) -> list[str]:
    """Why these runs cannot form a closed result of the round: required scenarios, accuracy targets, compliance
    tests, run length and query counts, deviations from the reference and cross-query caching (one line each)."""
    found: list[str] = []
    family = round_spec(layout.name).checker_family
    for benchmark in sorted({g.benchmark for g in collected.scenarios}):
        facts = benchmark_facts(benchmark, layout.name)
        have = {g.scenario for g in collected.scenarios if g.benchmark == benchmark}
        required, one_of = facts.required_scenarios.get(system_type, ()), facts.one_of_scenarios.get(system_type, ())
        missing = [s for s in required if s not in have] + ([" or ".join(one_of)] if one_of and not
                                                             set(one_of) & have else [])
        rule = ", ".join(required) + (f" plus one of {', '.join(one_of)}" if one_of else "")
        if missing:
            found.append(f"{benchmark}: closed needs {', '.join(missing)} runs too (round {layout.name}, "
                         f"{system_type}: {rule})")
    for group in collected.scenarios:
        found += _closed_group(group, benchmark_facts(group.benchmark, layout.name), family)
    return list(dict.fromkeys(found))


def _closed_group(group: ScenarioRuns, facts: BenchmarkFacts, family: str) -> list[str]:
    where = f"{group.benchmark} {group.scenario}"
    found = [f"{where}: closed needs a {test} run (`compliance run {test} --scenario {group.scenario}`)"
             for test in facts.compliance_tests if test not in group.compliance]
    if group.accuracy is not None:
        lines = group.accuracy.file(artifacts.ACCURACY_TXT).read_text(errors="replace").splitlines()
        found += [f"{group.accuracy.path}: closed: {line}" for line in accuracy_problems(facts, lines, family)]
    if group.performance is not None:
        found += _closed_performance(group.performance, group.scenario, facts)
    runs = [provenance.run_facts(role, run.path, run.manifest, run_config(run.path)) for role, run in group.runs()]
    for fact, (_, run) in zip(runs, group.runs(), strict=True):
        deviations = [d for d in provenance.deviations(fact, run.manifest) if not d.startswith("cross-query")]
        found += [f"{run.path}: closed allows no deviation from the reference: {d}" for d in deviations]
        found += _closed_generation(run, facts)
    found += [f"closed forbids cross-query caching: {line}" for line in provenance.caching_problems(runs)]
    return found


def _closed_performance(run: RunInput, scenario: str, facts: BenchmarkFacts) -> list[str]:
    log = parse_detail_log(run.file(artifacts.DETAIL))
    found = []
    duration = log["effective_min_duration_ms"]
    if not isinstance(duration, int) or duration < MIN_DURATION_MS:
        found.append(f"{run.path}: min duration {duration} ms; closed needs >= {MIN_DURATION_MS} ms (a shortened run)")
    needed = facts.min_queries.get(scenario) if scenario == "Offline" else None  # Server: early stopping decides
    if needed is not None and (log["effective_min_query_count"] or 0) < needed:
        found.append(f"{run.path}: min query count {log['effective_min_query_count']}; closed needs >= {needed}")
    for key in ("effective_performance_sample_count",) + (("effective_samples_per_query",)
                                                           if scenario == "Offline" else ()):
        if (log[key] or 0) < facts.performance_samples:
            found.append(f"{run.path}: {key} {log[key]}; closed needs >= {facts.performance_samples}")
    return found


def _closed_generation(run: RunInput, facts: BenchmarkFacts) -> list[str]:
    """The fixed generation settings, read from the run's config.yaml (older manifests may not list them): the
    output cap of the run's mode, and greedy decoding or the reference's sampling (temperature, top_p, top_k)."""
    config = run_config(run.path)
    generation = config.get("generation") or {}
    reference = facts.generation
    found = []
    cap = reference.cap(accuracy=config.get("mode") == "accuracy")
    max_new = generation.get("max_new_tokens")
    if max_new is not None and max_new != cap:
        found.append(f"{run.path}: generation.max_new_tokens is {max_new}; closed fixes {cap} for a "
                     f"{config.get('mode', 'performance')} run")
    if reference.greedy:
        greedy = generation.get("temperature", 0.0) == 0.0 and generation.get("num_beams", 1) == 1
        if not greedy:
            found.append(f"{run.path}: decoding is not greedy (temperature {generation.get('temperature')}, "
                         f"num_beams {generation.get('num_beams')}); closed fixes greedy decoding")
        return found
    fixed = {"temperature": reference.temperature, "top_p": reference.top_p, "top_k": reference.top_k,
             "num_beams": 1}
    changed = [f"{key} {generation.get(key)!r}" for key, value in fixed.items()
               if key in generation and generation[key] != value]
    if changed:
        wanted = ", ".join(f"{key} {value!r}" for key, value in fixed.items())
        found.append(f"{run.path}: sampling is {', '.join(changed)}; closed fixes the reference's sampling ({wanted})")
    return found
