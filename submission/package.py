"""Assemble the official open- or closed-division tree from run directories, all at once or not at all.

The tree is written into a temporary directory beside --output, checked with our own rules, and only
then renamed into place; the untruncated accuracy logs go to <output>-originals/ beside it. A closed tree
adds the closed division's reasons (submission.inputs.closed_reasons, measurements.closed_problems) and the
submitter's calibration.md.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from compliance.results import read_result
from harness import artifacts
from harness.benchmarks.registry import benchmark_facts
from harness.errors import CheckFailed, ConfigError, InputError
from harness.safe_paths import os_errors, safe_copy
from harness.types import Check
from submission import measurements, provenance
from submission.code import CodePin, write_code_dir
from submission.inputs import CollectedRuns, RunInput, ScenarioRuns, closed_reasons, collect_runs
from submission.layout import DEFAULT_DIVISION, Tree, check_division, check_name, round_layout
from submission.system import SystemDescription, load_system, system_id

VIEWABLE_CHARS = 4096
ELLIPSIS = "\n\n...\n\n"
DEFAULT_IMPLEMENTATION = "mlperf-llm-harness"


@dataclass(frozen=True)
class PackageRequest:
    """What `submission package` was asked to build."""

    round: str
    submitter: str
    system_file: Path
    run_dirs: list[Path]
    output: Path
    implementation: str = DEFAULT_IMPLEMENTATION
    allow_unsubmittable: bool = False
    both_benchmarks: bool = False
    measurements_file: Path | None = None
    code_url: str | None = None
    code_commit: str | None = None
    division: str = DEFAULT_DIVISION
    calibration_file: Path | None = None  # closed: calibration.md to copy (else one is written from the runs)


@dataclass
class PackageResult:
    """Where the tree went, what it holds, and what our checker found in it."""

    root: Path
    originals: Path
    scenarios: list[tuple[str, str]]
    unsubmittable: list[str]
    findings: list[Check] = field(default_factory=list)


def originals_dir(output: Path) -> Path:
    """Where the untruncated accuracy logs are kept: <output>-originals beside the tree."""
    return output.with_name(output.name + "-originals")


def package_submission(request: PackageRequest) -> PackageResult:
    """Build the tree for request.round and request.division; refuse unsubmittable runs unless allowed; never
    half-write."""
    layout = round_layout(request.round)
    check_division(request.division)
    check_name("--submitter", request.submitter)
    check_name("--implementation", request.implementation)
    system = _load_system(request)
    _refuse_output_in_runs(request)
    pin = CodePin(request.code_url, request.code_commit)
    collected = collect_runs(request.run_dirs, layout, request.both_benchmarks)
    _refuse_system_type(request, system, collected, layout.name)
    if request.division == "closed":
        collected.unsubmittable += closed_reasons(collected, layout, system.system_type)
        for group in collected.scenarios:
            collected.unsubmittable += [f"closed: {line}" for line in measurements.closed_problems(
                _override(request, group), f"{group.benchmark} {group.scenario}: ")]
        collected.unsubmittable = list(dict.fromkeys(collected.unsubmittable))
    conflicts = _contradictions(request, system, collected)
    if conflicts and not request.allow_unsubmittable:
        more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
        raise InputError(f"provenance contradiction: {conflicts[0]}{more}",
                         hint="package runs of one system and setup; --allow-unsubmittable packages them anyway "
                              "and every README.md lists the contradictions first")
    if collected.unsubmittable and not request.allow_unsubmittable:
        more = f" (and {len(collected.unsubmittable) - 1} more)" if len(collected.unsubmittable) > 1 else ""
        raise InputError(f"not submittable: {collected.unsubmittable[0]}{more}",
                         hint="package real, full-length, completed runs" + (
                             " that meet every closed rule" if request.division == "closed" else "") +
                         "; --allow-unsubmittable packages them anyway and the README says so")
    _refuse_existing(request.output)
    with os_errors("create the submission tree's directory"):
        request.output.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(request.output)
        staging = Path(tempfile.mkdtemp(prefix=_staging_prefix(request.output) + f"{os.getpid()}-",
                                        dir=request.output.parent))
    try:
        with os_errors("write the submission tree"):
            tree = Tree(staging / "tree", request.submitter, layout, request.division)
            _write_tree(tree, request, system, collected, staging / "originals", (pin, conflicts))
        findings = _self_check(tree, request, collected)
        with os_errors("move the finished tree into place"):
            os.rename(staging / "originals", originals_dir(request.output))
            os.rename(staging / "tree", request.output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    scenarios = [(g.benchmark, g.scenario) for g in collected.scenarios]
    return PackageResult(request.output, originals_dir(request.output), scenarios, collected.unsubmittable,
                         findings)


def _refuse_output_in_runs(request: PackageRequest) -> None:
    """The tree (and its originals beside it) must not land inside a run it reads: that run would change."""
    output = request.output.resolve()
    for run_dir in request.run_dirs:
        run = run_dir.resolve()
        for target in (output, originals_dir(output)):
            if target == run or run in target.parents:
                raise InputError(f"--output {request.output} is inside run directory {run_dir}; expected a "
                                 "location outside every run being packaged",
                                 hint="choose --output outside the run directories, e.g. beside them")


def _staging_prefix(output: Path) -> str:
    return f".{output.name}.staging-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_staging(output: Path) -> list[Path]:
    """Delete staging directories that a killed packager left beside output (their process is gone)."""
    removed = []
    prefix = _staging_prefix(output)
    for candidate in output.parent.glob(f"{prefix}*"):
        pid_text = candidate.name[len(prefix):].split("-", 1)[0]
        if candidate.is_dir() and not candidate.is_symlink() and pid_text.isdigit() and not _pid_alive(int(pid_text)):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def _load_system(request: PackageRequest) -> SystemDescription:
    system = load_system(request.system_file)
    system_id(request.system_file)
    if system.submitter.lower() != request.submitter.lower():
        raise InputError(f"{request.system_file}: submitter is {system.submitter!r} but --submitter is "
                         f"{request.submitter!r}; the checker needs them equal (case-insensitive)",
                         hint="fix one of the two")
    if system.division != request.division:
        raise InputError(f"{request.system_file}: division is {system.division!r} but --division is "
                         f"{request.division!r}; the checker needs them equal",
                         hint=f'set "division": "{request.division}" in the system description, or pass '
                              f"--division {system.division}")
    return system


def _refuse_system_type(request: PackageRequest, system: SystemDescription, collected: CollectedRuns,
                        round_name: str) -> None:
    """Refuse a system_type under which the round's checker does not know a packaged benchmark."""
    types = set(system.system_type.split(","))
    for benchmark in sorted({group.benchmark for group in collected.scenarios}):
        allowed = benchmark_facts(benchmark, round_name).system_types
        if not types & set(allowed):
            raise InputError(f"{request.system_file}: system_type is {system.system_type!r}; in round {round_name} "
                             f"{benchmark} runs on {' or '.join(allowed)} systems only",
                             hint=f'set "system_type": "{allowed[0]}", or package these runs with a system '
                                  "description of that type")


def _refuse_existing(output: Path) -> None:
    for path in (output, originals_dir(output)):
        if path.exists():
            raise ConfigError(f"{path} already exists; packaging never replaces an earlier tree",
                              hint="choose a new --output, or move the old tree away")


def _self_check(tree: Tree, request: PackageRequest, collected: CollectedRuns) -> list[Check]:
    from submission.rules import check_tree

    findings = check_tree(tree.root, request.round, expected_results=len(collected.scenarios)).checks
    failures = [f for f in findings if f.failed]
    if failures and not request.allow_unsubmittable:
        first = failures[0]
        raise CheckFailed(f"the packaged tree would fail the {request.round} checker: {first.path}: "
                          f"{first.detail}", hint=first.fix or "run `submission check` on the runs' tree")
    return findings


def _contradictions(request: PackageRequest, system: SystemDescription, collected: CollectedRuns) -> list[str]:
    found: list[str] = []
    for group in collected.scenarios:
        facts = _facts(group)
        found += [f"{group.benchmark} {group.scenario}: {line}"
                  for line in provenance.contradictions(facts, system, str(request.system_file))]
    return list(dict.fromkeys(found))


def _facts(group: ScenarioRuns) -> list[provenance.RunFacts]:
    return [provenance.run_facts(role, run.path, run.manifest, measurements.run_config(run.path))
            for role, run in group.runs()]


def _write_tree(tree: Tree, request: PackageRequest, system: SystemDescription, collected: CollectedRuns,
                originals: Path, code: tuple[CodePin, list[str]]) -> None:
    sys_id = system_id(request.system_file)
    _copy(request.system_file, tree.system_json(sys_id))
    for group in collected.scenarios:
        _write_results(tree, sys_id, group, originals)
        _write_measurements(tree, request, (sys_id, system), group, (collected.unsubmittable, code[1]))
        write_compliance(tree, sys_id, group)
    for benchmark in sorted({g.benchmark for g in collected.scenarios}):
        write_code_dir(tree.code(benchmark, request.implementation), code[0], _code_header(request, collected))
    if tree.division == "closed":
        if request.calibration_file is not None:
            _copy(request.calibration_file, tree.calibration())
        else:
            artifacts.write_text_atomic(tree.calibration(), _calibration_text(request, collected))


def compliance_runs(group: ScenarioRuns) -> dict[str, RunInput]:
    """The group's compliance runs by test (every test of the benchmark that was given)."""
    return dict(group.compliance)


def write_compliance(tree: Tree, sys_id: str, group: ScenarioRuns) -> None:
    """Copy each compliance run's <TEST>/ where the round's checker reads it (compliance/<sys>/<bench>/<scenario>/
    <TEST> up to v5.1, results/<sys>/<bench>/<scenario>/<TEST> from v6.0): the verify file (TEST09:
    verify_output_len.txt), accuracy/mlperf_log_accuracy.json and, for TEST07/TEST09, performance/run_1/."""
    for test, run in sorted(compliance_runs(group).items()):
        stored = read_result(run.path, test)
        target = tree.compliance(sys_id, group.benchmark, group.scenario, test)
        for name in stored.files():
            safe_copy(run.path, f"{test}/{name}", target / name)


def _write_results(tree: Tree, sys_id: str, group: ScenarioRuns, originals: Path) -> None:
    assert group.performance is not None and group.accuracy is not None
    perf = tree.performance(sys_id, group.benchmark, group.scenario)
    for name in (artifacts.SUMMARY, artifacts.DETAIL):
        safe_copy(group.performance.path, name, perf / name)
    acc = tree.accuracy(sys_id, group.benchmark, group.scenario)
    for name in (artifacts.SUMMARY, artifacts.DETAIL, artifacts.ACCURACY_TXT):
        safe_copy(group.accuracy.path, name, acc / name)
    original = originals / sys_id / group.benchmark / group.scenario / "accuracy" / artifacts.ACCURACY_LOG
    safe_copy(group.accuracy.path, artifacts.ACCURACY_LOG, original)
    truncate_accuracy_log(original, acc / artifacts.ACCURACY_LOG, acc / artifacts.ACCURACY_TXT)


def truncate_accuracy_log(original: Path, target: Path, accuracy_txt: Path) -> str:
    """Write the viewable head and tail of the log to target; append hash=<sha256 of original>."""
    digest = hashlib.sha256(original.read_bytes()).hexdigest()
    text = original.read_text(errors="replace")
    if len(text) > 2 * VIEWABLE_CHARS + len(ELLIPSIS):
        text = text[:VIEWABLE_CHARS] + ELLIPSIS + text[-VIEWABLE_CHARS:]
    artifacts.write_text_atomic(target, text)
    existing = accuracy_txt.read_text()
    lines = [line for line in existing.splitlines() if not line.startswith("hash=")]
    artifacts.write_text_atomic(accuracy_txt, "\n".join(lines).rstrip("\n") + f"\nhash={digest}\n")
    return digest


def _override(request: PackageRequest, group: ScenarioRuns) -> dict[str, str]:
    """The hand-written measurements keys of a scenario: measurements/<system>/<benchmark>/<scenario>/ under
    --measurements (which wins)."""
    kept = measurements.hand_kept(request.system_file, group.benchmark, group.scenario)
    return {**kept.keys, **measurements.read_measurements_override(request.measurements_file)}


def _write_measurements(tree: Tree, request: PackageRequest, described: tuple[str, SystemDescription],
                        group: ScenarioRuns, problems: tuple[list[str], list[str]]) -> None:
    sys_id, system = described
    unsubmittable, all_conflicts = problems
    conflicts = [c.removeprefix(f"{group.benchmark} {group.scenario}: ") for c in all_conflicts
                 if c.startswith(f"{group.benchmark} {group.scenario}: ")]
    assert group.performance is not None
    perf = group.performance
    where = tree.measurements(sys_id, group.benchmark, group.scenario)
    facts = _facts(group)
    info = measurements.derive_info_all(facts, _override(request, group))
    target = tree.measurements_json(sys_id, group.benchmark, group.scenario, request.implementation)
    artifacts.write_json_atomic(target, info.model_dump())
    runs = [(role, run.manifest) for role, run in group.runs()]
    prefixes = (f"{group.benchmark} {group.scenario}:", f"{group.benchmark}:", "closed: ")
    own = [r for r in unsubmittable if any(f"{run.path}:" in r for _, run in group.runs()) or r.startswith(prefixes)]
    if (unsubmittable or all_conflicts) and not own:
        own = ["other results packaged in this tree are not submittable (see their README.md)"]
    readme = measurements.render_readme(runs, system, request.round, (own, conflicts), facts, info,
                                        tree.division)
    kept = measurements.hand_kept(request.system_file, group.benchmark, group.scenario)
    if kept.notes:
        readme += f"\n## Calibration and tuning notes\n\nFrom {Path(kept.where).name}/ of the submitter's " \
                  f"measurements folder:\n\n{kept.notes}\n"
    artifacts.write_text_atomic(where / "README.md", readme)
    safe_copy(perf.path, artifacts.USER_CONF, where / artifacts.USER_CONF)
    if tree.layout.needs_mlperf_conf:
        safe_copy(perf.path, artifacts.MLPERF_CONF, where / artifacts.MLPERF_CONF)


def _code_header(request: PackageRequest, collected: CollectedRuns) -> list[str]:
    manifests = [run.manifest for group in collected.scenarios for _, run in group.runs()]
    commits = sorted({m.git_commit or "unknown" for m in manifests})
    versions = sorted({m.versions.get("mlperf-llm-harness", "unknown") for m in manifests})
    return [
        f"# {request.implementation}", "",
        "These results were produced with mlperf-llm-harness, an open-source harness that drives MLPerf",
        "LoadGen against TensorRT-LLM (or the transformers reference backend) on Slurm GPU clusters.", "",
        f"- harness version(s) the runs recorded: {', '.join(versions)}",
        f"- harness git commit(s) the runs recorded: {', '.join(commits)}", "",
        "The exact command of every run is in measurements/<system>/<benchmark>/<scenario>/README.md",
        "(results/<system>/<benchmark>/<scenario>/README.md from round v6.0).",
    ]


def _calibration_text(request: PackageRequest, collected: CollectedRuns) -> str:
    """calibration.md of a closed tree when none is given: the weights as the measurements JSON states them."""
    lines = ["# Calibration", "", f"Round {request.round}, closed division, written by `submission package`.", "",
             "The weights of each result and what was done to them, as its measurements JSON states them. A result "
             "with quantized weights must describe here the calibration data set (a subset of the benchmark's "
             "calibration set) and procedure: pass `--calibration FILE`.", ""]
    for group in collected.scenarios:
        info = measurements.derive_info_all(_facts(group), _override(request, group))
        lines.append(f"- {group.benchmark} {group.scenario}: weights {info.starting_weights_filename}; "
                     f"transformations: {info.weight_transformations}; data types: {info.weight_data_types}")
    return "\n".join(lines) + "\n"


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
