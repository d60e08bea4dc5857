"""Verify an audit run directory: settings from its manifest, outputs in the layout the packager copies.

Outputs (as run_verification.py ``-o OUT`` writes them), with OUT the run directory unless told otherwise:

- TEST06: ``OUT/TEST06/verify_accuracy.txt`` and ``OUT/TEST06/accuracy/mlperf_log_accuracy.json``;
- TEST07: ``OUT/TEST07/verify_accuracy.txt`` (the scorer's output + the summary), ``accuracy/`` and
  ``performance/run_1/`` (the run's summary and detail logs);
- TEST09: ``OUT/TEST09/verify_output_len.txt``, ``accuracy/`` and ``performance/run_1/``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from compliance import test07, test09
from compliance.audit import audit_applied, write_official_outputs
from compliance.results import ACCURACY_DIR, ACCURACY_LOG, TEST06, VERIFY_FILE, ComplianceResult, verify_file_name
from compliance.test06 import DTYPES, LLAMA2_EOS, VerifySettings, verify_log
from harness.artifacts import CONFIG, DETAIL, MANIFEST, Manifest, RunArtifacts, write_text_atomic
from harness.benchmarks.facts import BenchmarkFacts
from harness.benchmarks.registry import BENCHMARK_NAMES, benchmark_facts
from harness.config import RunConfig
from harness.errors import ConfigError, InputError
from harness.safe_paths import contained, copy_atomic
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


def _refuse_non_audit_run(run_dir: Path, test: str = TEST06) -> None:
    """A run directory whose manifest or LoadGen log says it was no audit run of `test` gets no verdict for it."""
    if not (run_dir / MANIFEST).is_file():
        return  # a bare directory holding an accuracy log: the user vouches for it (and gives --scenario)
    manifest = RunArtifacts(run_dir).read_manifest()
    if manifest.compliance_test != test:
        raise InputError(
            f"{run_dir} is not a {test} run (its manifest records compliance_test={manifest.compliance_test}, "
            f"mode {manifest.mode}); refusing to write a {test} verdict for it",
            hint=f"verify the directory written by `compliance run {test}`, or run that first")
    if (run_dir / DETAIL).is_file() and not audit_applied(run_dir / DETAIL):
        raise InputError(f"{run_dir / DETAIL} does not show that LoadGen read audit.config, so {run_dir} is no "
                         f"{test} audit run; refusing to write a {test} verdict for it",
                         hint=f"rerun the audit with `compliance run {test}`")


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
    copy_atomic(log, copied)
    write_text_atomic(target / VERIFY_FILE, result.verdict.render())



# --- TEST07 and TEST09 (gpt-oss-120b) ------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditVerification:
    """A verified TEST07 or TEST09 run: the verdict, the official file's text and where it was written."""

    test: str
    passed: bool
    text: str
    output_dir: Path
    details: dict[str, object]
    warnings: tuple[str, ...] = ()

    @property
    def verify_file(self) -> Path:
        """The written verify_accuracy.txt (TEST07) or verify_output_len.txt (TEST09)."""
        return self.output_dir / verify_file_name(self.test)


def _audit_run(run_dir: Path, test: str, benchmark: str | None) -> tuple[BenchmarkFacts, Path, list[str]]:
    """The benchmark's facts, the (contained) accuracy log and warnings, for a TEST07/TEST09 run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory; expected a {test} run directory")
    _refuse_non_audit_run(run_dir, test)
    warnings: list[str] = []
    if (run_dir / MANIFEST).is_file():
        manifest = RunArtifacts(run_dir).read_manifest()
        if benchmark is not None and benchmark != manifest.benchmark:
            warnings.append(f"benchmark {benchmark} overrides the run's {manifest.benchmark}")
        benchmark = benchmark or manifest.benchmark
        if manifest.status is not RunStatus.COMPLETED:
            warnings.append(f"the run's status is {manifest.status.value}; its accuracy log may be incomplete")
    benchmark = benchmark or next(name for name in BENCHMARK_NAMES if test in benchmark_facts(name).compliance_tests)
    facts = benchmark_facts(benchmark)
    if test not in facts.compliance_tests:
        raise ConfigError(f"{benchmark} has no {test}; its compliance tests are {', '.join(facts.compliance_tests)}",
                          hint=f"run `compliance verify {facts.compliance_tests[0]} RUN_DIR` for {benchmark}")
    log = run_dir / ACCURACY_LOG
    if log.exists() or log.is_symlink():
        log = contained(run_dir, ACCURACY_LOG)
    elif not log.is_file():
        raise InputError(f"{log} does not exist; expected the {test} run's mlperf_log_accuracy.json",
                         hint=f"pass the run directory of a `compliance run {test}`")
    return facts, log, warnings


def verify_test07_run(run_dir: Path, scorer: test07.Scorer | None = None, threshold: float | None = None,
                      output_dir: Path | None = None, overwrite: bool = False, *, benchmark: str | None = None,
                      pattern: str = test07.SCORE_PATTERN) -> AuditVerification:
    """Score a TEST07 run's accuracy log (scorer: log -> the text the scorer prints; None = the benchmark's own
    scorer on the run's TEST07 set) and write TEST07/ under output_dir (default: the run dir).

    threshold: None = test07_accuracy_threshold of our audit.config (as the official --audit-config reads it)."""
    run_dir = Path(run_dir)
    facts, log, warnings = _audit_run(run_dir, test07.TEST07, benchmark)
    if threshold is None:
        threshold = test07.threshold_of(test07.audit_config(facts))
        assert threshold is not None  # our own audit.config always carries it
    if scorer is None:
        scorer = run_scorer(run_dir)
    result = test07.verify_log(log, scorer, threshold, pattern)
    details: dict[str, object] = {"passed": result.passed, "score": result.score, "threshold": result.threshold}
    if result.score is None:
        warnings.append(f"no accuracy score matching {pattern!r} in the scorer's output: TEST FAIL")
    return _finish(run_dir, test07.TEST07, result.passed, result.render(), details, warnings,
                   (output_dir, overwrite))


def verify_test09_run(run_dir: Path, low: float | None = None, high: float | None = None,
                      output_dir: Path | None = None, overwrite: bool = False, *, benchmark: str | None = None
                      ) -> AuditVerification:
    """Count a TEST09 run's output tokens and write TEST09/ under output_dir (default: the run dir).

    low/high: None = test09_min/max_output_tokens of our audit.config (as the official --audit-config reads them)."""
    run_dir = Path(run_dir)
    facts, log, warnings = _audit_run(run_dir, test09.TEST09, benchmark)
    audit_low, audit_high = test09.bounds_in(test09.audit_config(facts))
    low = audit_low if low is None else low
    high = audit_high if high is None else high
    assert low is not None and high is not None  # our own audit.config always carries both
    result = test09.verify_log(log, low, high)
    if result.undecodable:
        warnings.append(f"{len(result.undecodable)} entr(ies) with undecodable data counted as 0 tokens "
                        f"(qsl_idx {', '.join(str(i) for i in result.undecodable[:10])})")
    details: dict[str, object] = {"passed": result.passed, "samples": len(result.lengths),
                                  "mean_output_tokens": round(result.mean, 2), "low": low, "high": high}
    return _finish(run_dir, test09.TEST09, result.passed, result.render(), details, warnings,
                   (output_dir, overwrite))


def _finish(run_dir: Path, test: str, passed: bool, text: str, details: dict[str, object], warnings: list[str],
            where: tuple[Path | None, bool]) -> AuditVerification:
    output_dir, overwrite = where
    target = (output_dir or run_dir) / test
    write_official_outputs(run_dir, target, verify_file_name(test), text, overwrite)
    if target.parent.resolve() == run_dir.resolve() and (run_dir / MANIFEST).is_file():
        run = RunArtifacts(run_dir)
        manifest = run.read_manifest()
        manifest.details[test.lower()] = details
        manifest.files = run.hash_files()
        run.write_manifest(manifest)
    return AuditVerification(test, passed, text, target, details, tuple(warnings))


def run_scorer(run_dir: Path) -> test07.Scorer:
    """The benchmark's own scorer for a TEST07 run: its config.yaml gives the benchmark, the TEST07 set (the
    references, in qsl order) and the tokenizer; the scorer's ``accuracy_text`` is the text it prints."""
    from harness.config import build_config
    from harness.safe_paths import read_contained

    if not (run_dir / CONFIG).is_file():
        raise InputError(f"{run_dir / CONFIG} does not exist, so the TEST07 set and tokenizer are unknown",
                         hint="verify the run directory written by `compliance run TEST07`")
    import yaml

    config = build_config(yaml.safe_load(read_contained(run_dir, CONFIG)) or {}, [])
    return benchmark_scorer(config)


def benchmark_scorer(config: RunConfig) -> test07.Scorer:
    """Wire the benchmark's scorer (harness.benchmarks.<family>.evaluate: score_accuracy_log + accuracy_text) to the
    references of the run's dataset (its TEST07 set when compliance_test is TEST07) and the run's tokenizer."""
    from harness.benchmarks.registry import family_module
    from harness.dataset import run_references
    from harness.tokenizer import load_tokenizer

    scorer = family_module(config.benchmark, "evaluate")
    references = run_references(config)
    tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
    livecodebench = Path(config.dataset.livecodebench) if config.dataset.livecodebench else None

    def score(log: Path) -> str:
        report = scorer.score_accuracy_log(log, references, tokenizer, benchmark=config.benchmark,
                                           livecodebench=livecodebench)
        return str(scorer.accuracy_text(report))

    return score
