"""Run directories given to `submission package`: read, check for completeness, group per benchmark and scenario.

Each (benchmark, scenario) needs one performance run and one accuracy run of the round; a TEST06
compliance run is optional. Whatever makes a run unsubmittable (fake backend, shortened, aborted,
failed, TEST06 not passing) is collected as a reason, each naming the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from compliance.results import VERIFY_FILE, read_test06
from harness import artifacts
from harness.artifacts import Manifest, ReasonCode, RunArtifacts
from harness.errors import InputError
from harness.safe_paths import contained, not_there
from harness.types import RunStatus
from submission.layout import BENCHMARKS, TEST06, RoundLayout

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
    test06: RunInput | None = None

    def runs(self) -> list[tuple[str, RunInput]]:
        """(role, run) pairs present, in README order."""
        pairs = [("Performance", self.performance), ("Accuracy", self.accuracy), ("TEST06", self.test06)]
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
    if run.manifest.compliance_test:
        if run.manifest.compliance_test != TEST06:
            raise InputError(f"{run.path}: compliance test {run.manifest.compliance_test!r} is not packaged; "
                             "Llama 2 70B uses only TEST06")
        return "test06"
    return "accuracy" if run.manifest.mode == "accuracy" else "performance"


def collect_runs(paths: list[Path], layout: RoundLayout, both_benchmarks: bool) -> CollectedRuns:
    """Group run dirs by (benchmark, scenario); refuse duplicates, wrong rounds and missing files."""
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
        if getattr(group, role) is not None:
            raise InputError(f"two {role} runs for {group.benchmark} {group.scenario}: "
                             f"{getattr(group, role).path} and {run.path}; expected one",
                             hint="pass exactly one run directory per benchmark, scenario and mode")
        setattr(group, role, run)
        _check_files(run, role, layout)
        reasons += _reasons(run, role)
    if both_benchmarks:
        _mirror_999(groups)
    for group in groups.values():
        _check_complete(group)
    ordered = [groups[key] for key in sorted(groups)]
    return CollectedRuns(ordered, list(dict.fromkeys(reasons)))


def _check_round(run: RunInput, layout: RoundLayout) -> list[str]:
    manifest = run.manifest
    if manifest.benchmark not in BENCHMARKS:
        raise InputError(f"{run.path}: benchmark {manifest.benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    if manifest.scenario not in layout.scenarios:
        raise InputError(f"{run.path}: scenario {manifest.scenario} does not exist in round {layout.name}; "
                         f"expected one of {', '.join(layout.scenarios)}")
    if manifest.round != layout.name:
        return [f"{run.path}: run for round {manifest.round} (its LoadGen seeds and config), packaged as "
                f"{layout.name}; package it with --round {manifest.round} or rerun it for {layout.name}"]
    return []


def _required_files(role: str, layout: RoundLayout) -> list[str]:
    if role == "test06":
        return [f"{TEST06}/{VERIFY_TXT}", f"{TEST06}/accuracy/{artifacts.ACCURACY_LOG}"]
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
    if role == "test06":
        if not read_test06(run.path).passed:
            found.append(f"{run.path}: TEST06 verification did not pass")
        return found
    if not manifest.submittable:
        found += [f"{run.path}: {text}" for text in manifest.reason_texts(leave_out=(ReasonCode.NOT_COMPLETED,))]
    problem = manifest.problem()
    if problem is not None and role == "performance":
        found.append(f"{run.path}: {problem} (result_validity {manifest.result.result_validity or 'missing'}): an "
                     "INVALID result")
    return found


def _mirror_999(groups: dict[tuple[str, str], ScenarioRuns]) -> None:
    """A llama2-70b-99.9 run meets the lower 99% target too, so it may also fill llama2-70b-99."""
    for (benchmark, scenario), group in list(groups.items()):
        if benchmark == "llama2-70b-99.9" and ("llama2-70b-99", scenario) not in groups:
            groups[("llama2-70b-99", scenario)] = ScenarioRuns(
                "llama2-70b-99", scenario, group.performance, group.accuracy, group.test06)


def _check_complete(group: ScenarioRuns) -> None:
    for role in ("performance", "accuracy"):
        if getattr(group, role) is None:
            raise InputError(f"no {role} run for {group.benchmark} {group.scenario}; each scenario needs one "
                             "performance and one accuracy run",
                             hint=f"add the run dir of `harness run --mode {role} --scenario {group.scenario}`")
