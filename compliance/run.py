"""`compliance run TEST06`: one harness run with the TEST06 audit settings, then its verification.

The audit.config text goes to harness.runner.run, which writes it into a private working directory of
the LoadGen process and removes it afterwards; the run's manifest records compliance_test=TEST06 and
marks the run as never submittable as a performance result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from compliance.test06 import AUDIT_CONFIG, audit_applied
from compliance.verify import Overrides, Verification, verify_run
from harness import runner
from harness.artifacts import DETAIL
from harness.config import RunConfig, with_updates
from harness.errors import RunError
from harness.types import RunStatus, TestMode


@dataclass(frozen=True)
class Test06Run:
    """A finished TEST06 audit run and its verification."""

    __test__ = False

    run_dir: Path
    verification: Verification
    loadgen_errors: int


def audit_run_config(config: RunConfig, scenario: str | None = None, output_dir: Path | None = None,
                     overwrite: bool = False) -> RunConfig:
    """The run config of a TEST06 audit run: performance mode, compliance_test=TEST06 (typed updates)."""
    updates: dict[str, object] = {"mode": TestMode.PERFORMANCE, "compliance_test": "TEST06"}
    if scenario is not None:
        updates["scenario"] = scenario
    if output_dir is not None:
        updates["output_dir"] = str(output_dir)
    if overwrite:
        updates["overwrite"] = True
    return with_updates(config, updates)


def run_test06(config: RunConfig, *, command: list[str] | None = None, progress: bool = True) -> Test06Run:
    """Run LoadGen with the TEST06 audit settings and verify the accuracy log it wrote."""
    outcome = runner.run(config, audit_config=AUDIT_CONFIG, command=command, progress=progress)
    if outcome.manifest.status is not RunStatus.COMPLETED:
        raise RunError(f"the TEST06 run in {outcome.run_dir} ended {outcome.manifest.status.value}")
    require_audit_applied(outcome.run_dir)
    verification = verify_run(outcome.run_dir, Overrides())
    errors = outcome.manifest.result.loadgen_errors
    if errors:
        note = f"LoadGen logged {errors} error(s) in this run; see {DETAIL} (e.g. a response with n_tokens < 2)"
        verification = replace(verification, result=replace(verification.result,
                                                            warnings=(*verification.result.warnings, note)))
    return Test06Run(outcome.run_dir, verification, errors)


def require_audit_applied(run_dir: Path) -> None:
    """LoadGen logs a warning when it reads audit.config; without it the run is not an audit run."""
    if not (run_dir / DETAIL).is_file() or not audit_applied(run_dir / DETAIL):
        raise RunError(f"{run_dir / DETAIL} does not show that LoadGen read audit.config; "
                       "the run is not a TEST06 audit run",
                       hint="check that the installed LoadGen reads audit.config from its working directory")
