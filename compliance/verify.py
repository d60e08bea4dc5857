"""Verify a TEST06 run directory: settings from its manifest, outputs in the layout the packager copies.

Outputs (as run_verification.py ``-o OUT`` writes them): ``OUT/TEST06/verify_accuracy.txt`` and
``OUT/TEST06/accuracy/mlperf_log_accuracy.json``, with OUT the run directory unless told otherwise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from compliance.results import ACCURACY_DIR, ACCURACY_LOG, TEST06, VERIFY_FILE, ComplianceResult
from compliance.test06 import DTYPES, LLAMA2_EOS, VerifySettings, audit_applied, verify_log
from harness.artifacts import DETAIL, MANIFEST, Manifest, RunArtifacts, write_text_atomic
from harness.errors import ConfigError, InputError
from harness.safe_paths import contained
from harness.types import RunStatus

SCENARIOS = ("Offline", "Server", "Interactive", "SingleStream", "MultiStream")


@dataclass(frozen=True)
class Overrides:
    """What the user forces instead of the manifest's values (None = take the manifest's)."""

    scenario: str | None = None
    dtype: str | None = None
    eos_token_id: int | None = None


@dataclass(frozen=True)
class Verification:
    """A verified run directory: the result and where its TEST06 outputs were written."""

    result: ComplianceResult
    output_dir: Path

    @property
    def verify_file(self) -> Path:
        """The written verify_accuracy.txt."""
        return self.output_dir / VERIFY_FILE


def resolve_settings(run_dir: Path, overrides: Overrides) -> tuple[VerifySettings, list[str]]:
    """Scenario, dtype and EOS id for a run directory, plus warnings about what looks off."""
    _validate(overrides)
    if not (run_dir / MANIFEST).is_file():
        return _bare_settings(run_dir, overrides), []
    manifest = RunArtifacts(run_dir).read_manifest()
    settings = VerifySettings(
        scenario=overrides.scenario or manifest.scenario,
        dtype=overrides.dtype or manifest.response_dtype,
        eos_token_id=_first_set(overrides.eos_token_id, manifest.eos_token_id, LLAMA2_EOS),
    )
    if settings.dtype not in DTYPES:
        raise InputError(f"{run_dir / MANIFEST} records response_dtype {settings.dtype!r}; expected one of "
                         f"{', '.join(DTYPES)}", hint="pass --dtype with the element type the SUT sent")
    return settings, _manifest_warnings(manifest, settings) + _audit_warnings(run_dir)


def _first_set(*values: int | None) -> int:
    return next(v for v in values if v is not None)


def _validate(overrides: Overrides) -> None:
    if overrides.scenario is not None and overrides.scenario not in SCENARIOS:
        raise ConfigError(f"--scenario {overrides.scenario!r} is not a scenario; expected one of "
                          f"{', '.join(SCENARIOS)}")
    if overrides.dtype is not None and overrides.dtype not in DTYPES:
        raise ConfigError(f"--dtype {overrides.dtype!r} is not supported; expected one of {', '.join(DTYPES)}")


def _bare_settings(run_dir: Path, overrides: Overrides) -> VerifySettings:
    """A directory with only mlperf_log_accuracy.json: the scenario must be given."""
    if overrides.scenario is None:
        raise ConfigError(f"{run_dir} has no {MANIFEST}, so its scenario is unknown",
                          hint="pass --scenario Offline|Server (and --dtype if the buffers are not int32)")
    return VerifySettings(overrides.scenario, overrides.dtype or "int32",
                          _first_set(overrides.eos_token_id, LLAMA2_EOS))


def _manifest_warnings(manifest: Manifest, settings: VerifySettings) -> list[str]:
    warnings = []
    if manifest.compliance_test != TEST06:
        warnings.append(f"the manifest does not record a TEST06 audit run (compliance_test="
                        f"{manifest.compliance_test}); the log may not be an audit log")
    if manifest.status is not RunStatus.COMPLETED:
        warnings.append(f"the run's status is {manifest.status.value}; its accuracy log may be incomplete")
    if settings.scenario != manifest.scenario:
        warnings.append(f"scenario {settings.scenario} overrides the run's {manifest.scenario}")
    if settings.dtype != manifest.response_dtype:
        warnings.append(f"dtype {settings.dtype} overrides the run's {manifest.response_dtype}")
    return warnings


def _audit_warnings(run_dir: Path) -> list[str]:
    """LoadGen logs a warning when it applies audit.config; its absence means this was no audit run."""
    if not (run_dir / DETAIL).is_file():
        return []
    if audit_applied(run_dir / DETAIL):
        return []
    return [f"{DETAIL} does not show that LoadGen read audit.config: this is not a TEST06 audit run"]


def verify_run(run_dir: Path, overrides: Overrides = Overrides(), output_dir: Path | None = None,
               overwrite: bool = False) -> Verification:
    """Verify a run directory's accuracy log and write TEST06/ under output_dir (default: the run dir)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory; expected a TEST06 run directory")
    settings, warnings = resolve_settings(run_dir, overrides)
    _refuse_non_audit_run(run_dir)
    log = run_dir / ACCURACY_LOG
    if log.exists() or log.is_symlink():
        log = contained(run_dir, ACCURACY_LOG)  # never verify (and copy) a file from outside the run
    result = verify_log(log, settings)
    if warnings:
        result = replace(result, warnings=(*warnings, *result.warnings))
    target = (output_dir or run_dir) / TEST06
    write_outputs(result, log, target, overwrite)
    if target.parent.resolve() == run_dir.resolve() and (run_dir / MANIFEST).is_file():
        record_in_manifest(run_dir, result)
    return Verification(result, target)


def _refuse_non_audit_run(run_dir: Path) -> None:
    """A run directory whose manifest or LoadGen log says it was no TEST06 audit run gets no TEST06 verdict."""
    if not (run_dir / MANIFEST).is_file():
        return  # a bare directory holding an accuracy log: the user vouches for it (and gives --scenario)
    manifest = RunArtifacts(run_dir).read_manifest()
    if manifest.compliance_test != TEST06:
        raise InputError(
            f"{run_dir} is not a TEST06 run (its manifest records compliance_test={manifest.compliance_test}, "
            f"mode {manifest.mode}); refusing to write a TEST06 verdict for it",
            hint="verify the directory written by `compliance run TEST06`, or run that first")
    if (run_dir / DETAIL).is_file() and not audit_applied(run_dir / DETAIL):
        raise InputError(f"{run_dir / DETAIL} does not show that LoadGen read audit.config, so {run_dir} is no "
                         "TEST06 audit run; refusing to write a TEST06 verdict for it",
                         hint="rerun the audit with `compliance run TEST06`")


def record_in_manifest(run_dir: Path, result: ComplianceResult) -> None:
    """Add the verdict to the run's manifest and re-hash its files (TEST06/ is new)."""
    run = RunArtifacts(run_dir)
    manifest = run.read_manifest()
    manifest.details["test06"] = {"passed": result.passed, "lines": result.verdict.lines(),
                                  "settings": result.settings, "failing_samples": len(result.findings)}
    manifest.files = run.hash_files()
    run.write_manifest(manifest)


def write_outputs(result: ComplianceResult, log: Path, target: Path, overwrite: bool) -> None:
    """Copy the log to target/accuracy/, then write target/verify_accuracy.txt (both atomically)."""
    copied = target / ACCURACY_DIR / ACCURACY_LOG
    if not overwrite and copied.is_file() and copied.read_bytes() != log.read_bytes():
        raise ConfigError(f"{target} already holds the TEST06 result of a different accuracy log",
                          hint="pass --output-dir elsewhere, or --overwrite to replace it")
    if not overwrite and not copied.is_file() and (target / VERIFY_FILE).is_file():
        raise ConfigError(f"{target / VERIFY_FILE} exists without its accuracy log; not replacing it",
                          hint="pass --overwrite to replace it")
    copied.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{ACCURACY_LOG}.", suffix=".tmp", dir=copied.parent)
    os.close(fd)
    try:
        shutil.copyfile(log, tmp)
        os.replace(tmp, copied)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    write_text_atomic(target / VERIFY_FILE, result.verdict.render())

