"""`harness preflight`: thin command over harness.preflight (run it under mpirun/srun for the fabric)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli._app import app
from harness.config import load_config
from harness.console import checks_table, stdout
from harness.errors import PreflightError
from harness.preflight import PreflightInputs, run_preflight, write_report

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="run config YAML (preflight: section)")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="override: key.path=value")]



@app.command("preflight")
def preflight(
    config: ConfigOption = None,
    set_: SetOption = None,
    json_out: Annotated[Path, typer.Option("--json", help="where to write the JSON report")] = Path(
        "preflight.json"),
    nccl_tests_log: Annotated[Path | None, typer.Option(help="saved all_reduce_perf output to judge")] = None,
    perftest_log: Annotated[Path | None, typer.Option(help="saved ib_write_bw client output to judge")] = None,
    sysfs_root: Annotated[Path, typer.Option(help="sysfs to read RDMA/NIC state from")] = Path("/sys"),
    no_tools: Annotated[bool, typer.Option("--no-tools", help="never run all_reduce_perf/ib_write_bw")] = False,
) -> None:
    """Check hosts, GPUs, RDMA ports and the fabric; exit 3 when a check fails. Use mpirun/srun for N hosts."""
    run_config = load_config(config, set_ or [])
    inputs = PreflightInputs(sysfs_root, nccl_tests_log, perftest_log, not no_tools)
    report = run_preflight(run_config, inputs)
    if report is None:  # not rank 0: rank 0 reports for everyone
        return
    stdout.print(checks_table(report.checks, title=f"preflight ({report.data['world_size']} rank(s))"))
    write_report(report, json_out)
    stdout.print(f"report: {json_out}", markup=False)
    if report.failed:
        first = report.failed[0]
        raise PreflightError(f"{len(report.failed)} preflight check(s) failed; first: {first.name}: {first.detail}",
                             hint=first.fix or f"see {json_out}")
