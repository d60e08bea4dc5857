"""`compliance run TEST06|TEST07|TEST09`: one harness run with the test's audit settings, then its verification.

The audit.config text goes to harness.runner.run, which writes it into a private working directory of
the LoadGen process and removes it afterwards; the run's manifest records compliance_test=<TEST> and
marks the run as never submittable as a performance result. TEST07 runs read the benchmark's TEST07 set
(harness.dataset.dataset_file resolves a download folder by the run's compliance_test).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from compliance import test07, test09
from compliance.audit import audit_applied
from compliance.test06 import AUDIT_CONFIG
from compliance.verify import (
    AuditVerification,
    Overrides,
    Verification,
    verify_run,
    verify_test07_run,
    verify_test09_run,
)
from harness import runner
from harness.artifacts import DETAIL
from harness.config import RunConfig, with_updates
from harness.errors import ConfigError, RunError
from harness.types import RunStatus, TestMode


@dataclass(frozen=True)
class Test06Run:
    """A finished TEST06 audit run and its verification."""

    __test__ = False

    run_dir: Path
    verification: Verification
    loadgen_errors: int


def audit_run_config(config: RunConfig, scenario: str | None = None, output_dir: Path | None = None,
                     overwrite: bool = False, test: str = "TEST06") -> RunConfig:
    """The run config of an audit run: performance mode, compliance_test=test (typed updates)."""
    updates: dict[str, object] = {"mode": TestMode.PERFORMANCE, "compliance_test": test}
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


def audit_config_text(config: RunConfig) -> str:
    """The audit.config of the config's compliance test for its benchmark (TEST06's is the same everywhere)."""
    test = config.compliance_test
    if test == "TEST07":
        return test07.audit_config(config.facts)
    if test == "TEST09":
        return test09.audit_config(config.facts)
    if test == "TEST06":
        return AUDIT_CONFIG
    raise ConfigError(f"compliance_test is {test!r}; expected TEST06, TEST07 or TEST09")


@dataclass(frozen=True)
class AuditRun:
    """A finished TEST07 or TEST09 audit run and its verification."""

    run_dir: Path
    verification: AuditVerification
    loadgen_errors: int


def run_audit(config: RunConfig, *, command: list[str] | None = None, progress: bool = True,
              scorer: test07.Scorer | None = None) -> AuditRun:
    """Run LoadGen with the TEST07 or TEST09 audit settings of config.compliance_test, then verify the run
    (TEST07: scorer, default the benchmark's own scorer on the run's TEST07 set)."""
    test = config.compliance_test
    if test not in ("TEST07", "TEST09"):
        raise ConfigError(f"run_audit runs TEST07 or TEST09, not {test}", hint="use run_test06 for TEST06")
    outcome = runner.run(config, audit_config=audit_config_text(config), command=command, progress=progress)
    if outcome.manifest.status is not RunStatus.COMPLETED:
        raise RunError(f"the {test} run in {outcome.run_dir} ended {outcome.manifest.status.value}")
    require_audit_applied(outcome.run_dir, test)
    if test == "TEST07":
        verification = verify_test07_run(outcome.run_dir, scorer)
    else:
        verification = verify_test09_run(outcome.run_dir)
    errors = outcome.manifest.result.loadgen_errors
    if errors:
        note = f"LoadGen logged {errors} error(s) in this run; see {DETAIL}"
        verification = replace(verification, warnings=(*verification.warnings, note))
    return AuditRun(outcome.run_dir, verification, errors)


def require_audit_applied(run_dir: Path, test: str = "TEST06") -> None:
    """LoadGen logs a warning when it reads audit.config; without it the run is not an audit run."""
    if not (run_dir / DETAIL).is_file() or not audit_applied(run_dir / DETAIL):
        raise RunError(f"{run_dir / DETAIL} does not show that LoadGen read audit.config; "
                       f"the run is not a {test} audit run",
                       hint="check that the installed LoadGen reads audit.config from its working directory")
