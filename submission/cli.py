"""`submission` console script: package | check | system detect | system validate | system schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from harness.artifacts import RunArtifacts, write_json_atomic
from harness.console import checks_table, run_cli, stderr, stdout
from harness.errors import CheckFailed, ConfigError, InputError
from harness.rounds import DEFAULT_ROUND, ROUNDS
from harness.safe_paths import not_there
from submission import system as system_mod
from submission.checker import run_official
from submission.detect import Sources, detect_system
from submission.layout import DEFAULT_DIVISION, DIVISIONS
from submission.package import DEFAULT_IMPLEMENTATION, PackageRequest, package_submission
from submission.rules import check_tree

app = typer.Typer(name="submission", help="Package runs into the official MLPerf open- or closed-division tree and "
                  "check it.",
                  pretty_exceptions_show_locals=False, add_completion=False, no_args_is_help=True)
system_app = typer.Typer(help="System descriptions (systems/*.json).", pretty_exceptions_show_locals=False,
                         no_args_is_help=True)
app.add_typer(system_app, name="system")

RoundOption = Annotated[str, typer.Option("--round", help=f"{', '.join(ROUNDS)} (default {DEFAULT_ROUND})")]
DivisionOption = Annotated[str, typer.Option("--division", help=f"{' or '.join(DIVISIONS)}: the tree's division "
                                                                "(closed adds the closed rules)")]


@app.command("package")
def package(
    run_dirs: Annotated[list[Path], typer.Argument(help="run directories written by `harness run`")],
    submitter: Annotated[str, typer.Option("--submitter", help="organisation (<division>/<ORG>)")],
    system: Annotated[Path, typer.Option("--system", help="systems/<system_desc_id>.json")],
    output: Annotated[Path, typer.Option("--output", help="new directory for the submission root")],
    round_: RoundOption = DEFAULT_ROUND,
    division: DivisionOption = DEFAULT_DIVISION,
    implementation: Annotated[str, typer.Option(help="implementation id (code/<bench>/<impl>)")] = (
        DEFAULT_IMPLEMENTATION),
    both_benchmarks: Annotated[bool, typer.Option(help="a llama2-70b-99.9 run also fills llama2-70b-99")] = False,
    measurements: Annotated[Path | None, typer.Option(help="JSON with measurements keys to set")] = None,
    allow_unsubmittable: Annotated[bool, typer.Option(help="package fake/short/failed runs; README says so")] = False,
    code_url: Annotated[str | None, typer.Option(help="public repository holding the code (with --code-commit); "
                                                      "default: copy the installed source into code/")] = None,
    code_commit: Annotated[str | None, typer.Option(help="the commit of --code-url that produced the runs")] = None,
    calibration: Annotated[Path | None, typer.Option(help="closed: calibration.md to copy (default: one written "
                                                          "from the measurements JSON)")] = None,
) -> None:
    """Build the official open- or closed-division tree for one round from run directories."""
    request = PackageRequest(round_, submitter, system, run_dirs, output, implementation, allow_unsubmittable,
                             both_benchmarks, measurements, code_url, code_commit, division, calibration)
    result = package_submission(request)
    for benchmark, scenario in result.scenarios:
        stdout.print(f"packaged {benchmark} {scenario}", markup=False)
    warnings = [c for c in result.findings if c.status.value in ("WARN", "FAIL")]
    if warnings:
        stderr.print(checks_table(warnings, title="findings (see `submission check`)"))
    if result.unsubmittable:
        stderr.print(f"NOT SUBMITTABLE ({len(result.unsubmittable)} reasons, stated in every README.md)",
                     markup=False)
    stdout.print(f"tree: {result.root}\noriginal accuracy logs: {result.originals}", markup=False)


@app.command("check")
def check(
    root: Annotated[Path, typer.Argument(help="submission root (the directory holding open/ or closed/)")],
    round_: RoundOption = DEFAULT_ROUND,
    official: Annotated[Path | None, typer.Option(help="checkout of mlcommons/inference to run")] = None,
    expected: Annotated[int | None, typer.Option(help="expected number of scenario results")] = None,
) -> None:
    """Check a tree with the round's rules (and, with --official, the official checker)."""
    report = check_tree(root, round_, expected)
    shown = [c for c in report.checks if c.status.value != "PASS" or c.name == "result-count"]
    stdout.print(checks_table(shown, title=f"submission check --round {round_}"))
    verdict = run_official(root, round_, official) if official is not None else None
    if verdict is not None:
        stdout.print(checks_table(verdict.checks(), title=f"official checker ({official})"))
    if not report.passed or (verdict is not None and not verdict.passed):
        failed = report.failures[0] if report.failures else verdict.checks()[-1]  # type: ignore[union-attr]
        raise CheckFailed(f"{root} fails round {round_}: {failed.path}: {failed.detail}", hint=failed.fix or None)
    stdout.print(f"OK: {report.counts()}", markup=False)


@system_app.command("validate")
def system_validate(file: Annotated[Path, typer.Argument(help="systems/<id>.json")]) -> None:
    """Validate a system description against the shipped schema; refuse placeholders."""
    found = system_mod.problems(system_mod.read_system_json(file), str(file))
    system_mod.system_id(file)
    for line in found:
        stderr.print(line, markup=False, soft_wrap=True)
    if found:
        raise InputError(f"{file}: {len(found)} problem(s), listed above", hint="fix each key as suggested")
    stdout.print(f"OK: {file}", markup=False)


@system_app.command("detect")
def system_detect(
    output: Annotated[Path | None, typer.Option(help="write the JSON here (never overwritten)")] = None,
    run_dir: Annotated[Path | None, typer.Option(help="run directory whose manifest has versions")] = None,
    sysfs_root: Annotated[Path, typer.Option(help="sysfs root")] = Path("/sys"),
    proc_root: Annotated[Path, typer.Option(help="procfs root")] = Path("/proc"),
) -> None:
    """Detect CPU, memory, OS, GPUs, NICs/RDMA, nodes and versions; list what must still be filled."""
    manifest = RunArtifacts(run_dir).read_manifest() if run_dir else None
    detected = detect_system(Sources(proc=proc_root, sys=sysfs_root, manifest=manifest))
    text = json.dumps(detected.as_json(), indent=2)
    if output is None:
        typer.echo(text)
    elif output.exists():
        raise ConfigError(f"{output} already exists; detect never overwrites a system description",
                          hint="choose another --output")
    elif not output.parent.is_dir():
        raise ConfigError(f"--output {not_there(output.parent, 'a directory to write the JSON in')}",
                          hint="choose --output inside an existing directory")
    else:
        write_json_atomic(output, detected.as_json())
        stdout.print(f"wrote {output}", markup=False)
    stderr.print(f"fill by hand: {', '.join(detected.missing) or 'nothing'}", markup=False, soft_wrap=True)


@system_app.command("schema")
def system_schema() -> None:
    """Print the shipped JSON Schema of systems/*.json."""
    typer.echo(json.dumps(system_mod.shipped_schema(), indent=2))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `submission` console script."""
    sys.exit(run_cli(app, argv))
