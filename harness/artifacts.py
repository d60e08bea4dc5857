"""The run-directory contract: file names, the manifest model, atomic writes, never-overwrite creation.

A run directory holds LoadGen's four files at its top level plus:
    config.yaml        the effective RunConfig (reproduces the run)
    user.conf          the LoadGen user.conf the run passed
    mlperf.conf        the round's mlperf.conf the run passed (v4.x rounds only)
    samples.jsonl      one timing record per completed sample
    accuracy.txt       accuracy mode: the reference's printed output (plain floats)
    accuracy.json      accuracy mode: summary, verdicts and per-sample scores
    manifest.json      status, submittability, versions, host, env allowlist, sha256 of every file
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness.errors import ConfigError, InputError
from harness.redact import MARKER, redact_argv, redact_environment, redact_mapping
from harness.safe_paths import contained
from harness.types import RunStatus, TestMode

__all__ = ["ACCURACY_JSON", "ACCURACY_LOG", "ACCURACY_TXT", "CONFIG", "DETAIL", "LOADGEN_FILES", "MANIFEST",
           "MLPERF_CONF", "SAMPLES", "SUMMARY", "TRACE", "USER_CONF", "Manifest", "Reason", "ReasonCode",
           "RunArtifacts", "RunResult", "create_run_dir", "default_run_dir", "recorded_environment",
           "sha256_file", "utc_now", "write_json_atomic", "write_text_atomic"]

SUMMARY = "mlperf_log_summary.txt"
DETAIL = "mlperf_log_detail.txt"
ACCURACY_LOG = "mlperf_log_accuracy.json"
TRACE = "mlperf_log_trace.json"
ACCURACY_TXT = "accuracy.txt"
ACCURACY_JSON = "accuracy.json"
CONFIG = "config.yaml"
USER_CONF = "user.conf"
MLPERF_CONF = "mlperf.conf"
SAMPLES = "samples.jsonl"
MANIFEST = "manifest.json"
LOADGEN_FILES = (SUMMARY, DETAIL, ACCURACY_LOG, TRACE)

# Environment variables worth recording; the value of any that looks secret (harness.redact) is redacted.
ENV_PREFIXES = ("CUDA_", "NCCL_", "UCX_", "SLURM_", "OMPI_", "PMIX_", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NVIDIA_", "TRTLLM_", "TLLM_", "HARNESS_", "PYTORCH_CUDA")
_SECRET_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "PASSPHRASE", "PASS", "SECRET", "KEY", "CREDENTIAL", "AUTH",
                 "COOKIE")


class ReasonCode(enum.StrEnum):
    """Why a run may not be submitted, as a code other tools filter on (the text is for people)."""

    SHORT_RUN = "short-run"  # fewer samples or shorter settings than a submittable run needs
    TEST_FAKE = "test-fake"  # the backend is a test fake
    COMPLIANCE_RUN = "compliance-run"  # an audit run, never a performance result
    SEED_MISMATCH = "seed-mismatch"  # LoadGen seeds differ from the round's
    LOADGEN_ERRORS = "loadgen-errors"  # LoadGen logged errors
    NOT_COMPLETED = "not-completed"  # the run was aborted or failed
    OTHER = "other"  # a reason recorded by an older version, as text only


class Reason(BaseModel):
    """One reason a run is not submittable: a code to filter on and a sentence for people."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: ReasonCode
    text: str


class RunResult(BaseModel):
    """What a finished test measured: LoadGen's key results (its own key names), its errors, and accuracy.

    LoadGen values are None when the detail log did not report them; `problem()` is the one definition of
    a run whose numbers must not be trusted (and of exit code 1).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)

    result_validity: str | None = None
    result_tokens_per_second: float | None = None
    result_samples_per_second: float | None = None
    result_completed_samples_per_sec: float | None = None
    result_completed_tokens_per_second: float | None = None
    first_token_p99_ns: float | None = Field(None, alias="result_first_token_99.00_percentile_latency_ns")
    time_per_output_token_p99_ns: float | None = Field(None, alias="result_time_per_output_token_99.00_percentile_ns")
    result_first_token_mean_latency_ns: float | None = None
    result_time_per_output_token_mean_ns: float | None = None
    latency_p99_ns: float | None = Field(None, alias="result_99.00_percentile_latency_ns")
    early_stopping_met: bool | None = None
    result_min_duration_met: bool | None = None
    result_min_queries_met: bool | None = None
    requested_use_token_latencies: bool | None = None
    effective_min_duration_ms: int | None = None
    effective_samples_per_query: int | None = None
    effective_performance_sample_count: int | None = None
    effective_target_qps: float | None = None
    loadgen_version: str | None = None
    effective_qsl_rng_seed: int | None = None
    effective_sample_index_rng_seed: int | None = None
    effective_schedule_rng_seed: int | None = None
    loadgen_errors: int = 0
    loadgen_error_messages: list[str] = Field(default_factory=list)
    loadgen_warnings: int = 0
    seed_mismatch: str | None = None
    accuracy: dict[str, float] | None = None
    accuracy_passed: bool | None = None
    accuracy_partial: bool | None = None

    @classmethod
    def detail_log_keys(cls) -> tuple[str, ...]:
        """The mlperf_log_detail.txt keys this model holds, under LoadGen's names."""
        computed = {"loadgen_errors", "loadgen_error_messages", "loadgen_warnings", "seed_mismatch", "accuracy",
                    "accuracy_passed", "accuracy_partial"}
        return tuple(field.alias or name for name, field in cls.model_fields.items() if name not in computed)

    def problem(self, mode: str) -> str | None:
        """Why this result fails the run (LoadGen errors, or a performance result that is not VALID); None if not."""
        if self.loadgen_errors:
            return f"LoadGen logged {self.loadgen_errors} error(s)"
        if mode == TestMode.PERFORMANCE.value and self.result_validity != "VALID":
            return f"LoadGen result is {self.result_validity or 'missing'}"
        return None


MANIFEST_SCHEMA = 2  # the manifest.json layout this harness writes and reads


class Manifest(BaseModel):
    """manifest.json: what ran, where, with what, and whether it may be submitted."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = Field(MANIFEST_SCHEMA, ge=1, le=MANIFEST_SCHEMA)
    status: RunStatus = RunStatus.RUNNING
    submittable: bool = False
    not_submittable_reasons: list[Reason] = Field(default_factory=list)
    deviations: list[str] = Field(default_factory=list)
    round: str
    benchmark: str
    scenario: str
    mode: str
    compliance_test: str | None = None
    backend: str
    backend_name: str = ""
    model: str = ""
    dataset: str = ""
    sample_count: int = 0
    response_dtype: str = "int32"
    eos_token_id: int | None = None
    command: list[str] = Field(default_factory=list)
    host: str = ""
    started_at: str = ""
    ended_at: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)
    result: RunResult = Field(default_factory=RunResult)
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("not_submittable_reasons", mode="before")
    @classmethod
    def _reasons_from_text(cls, value: object) -> object:
        """Schema 1 recorded reasons as plain sentences; read them as code "other"."""
        if isinstance(value, list):
            return [{"code": ReasonCode.OTHER, "text": item} if isinstance(item, str) else item for item in value]
        return value

    def problem(self) -> str | None:
        """Why the finished test's numbers fail the run (see RunResult.problem); None when they do not."""
        return self.result.problem(self.mode)

    def exit_code(self) -> int:
        """The documented exit code of a finished run: 1 when `problem()` says so, else 0."""
        return 1 if self.problem() else 0

    def reason_texts(self, *, leave_out: tuple[ReasonCode, ...] = ()) -> list[str]:
        """The not-submittable reasons as sentences, without those of the given codes."""
        return [reason.text for reason in self.not_submittable_reasons if reason.code not in leave_out]


def utc_now() -> str:
    """Current UTC time as ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to path through a temporary file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (indented, trailing newline) atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Allowlisted environment variables; the value of any that looks like a secret is the redaction marker.

    A name is redacted when harness.redact says it looks secret, or (more cautious for the environment)
    when it merely contains one of _SECRET_WORDS.
    """
    env = os.environ if environ is None else environ
    chosen = {name: value for name, value in sorted(env.items()) if name.startswith(ENV_PREFIXES)}
    redacted = redact_environment(chosen)
    return {name: MARKER if any(word in name.upper() for word in _SECRET_WORDS) and value else redacted[name]
            for name, value in chosen.items()}


def redacted_command(argv: list[str]) -> list[str]:
    """The command line as recorded in manifest.json: secret values replaced by the marker."""
    return redact_argv(argv)


def config_text(config: dict[str, Any]) -> str:
    """A config copy (config.yaml, a Slurm job's config, a pipeline stage's): YAML with secrets redacted."""
    return yaml.safe_dump(redact_mapping(config), sort_keys=False)


def default_run_dir(root: Path, scenario: str, mode: str) -> Path:
    """runs/<UTC time>-<scenario>-<mode>, made unique with a counter."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{scenario.lower()}-{mode}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def create_run_dir(path: Path, overwrite: bool) -> Path:
    """Create an empty run directory; refuse an existing non-empty one unless overwrite is set."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output_dir {path} exists and is a file; expected a directory path")
    if path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"run directory {path} already exists and is not empty; a run never replaces another",
                hint="choose a new --output-dir, or pass --overwrite (--set overwrite=true) to replace it",
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _manifest_problem(err: ValidationError) -> str:
    """The first problem of a manifest, as 'key: what (got value)'; a truncated file says so."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the file"
    if first["type"].startswith("json_"):
        return f"not complete JSON ({first['msg']}); the file may be truncated"
    if where == "schema_version" and first["type"] == "less_than_equal":
        return (f"schema_version {first['input']} is newer than this harness reads ({MANIFEST_SCHEMA}); it was "
                "written by a newer mlperf-llm-harness")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    return f"{where}: {first['msg']} (got {str(first.get('input'))[:60]!r}){more}"


def _manifest_hint(err: ValidationError) -> str:
    if any(e["loc"] == ("schema_version",) and e["type"] == "less_than_equal" for e in err.errors()):
        return "upgrade mlperf-llm-harness to read it"
    return "rerun the run with `harness run`; a manifest is never edited by hand"


class RunArtifacts:
    """Typed access to one run directory's files."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def file(self, name: str) -> Path:
        """Path of a named file inside the run directory."""
        return self.path / name

    @property
    def manifest_path(self) -> Path:
        """Where manifest.json lives."""
        return self.path / MANIFEST

    def read_manifest(self) -> Manifest:
        """Load and validate manifest.json, with a clear error when it is missing or broken."""
        path = self.manifest_path
        if not path.is_file():
            raise InputError(f"{self.path} is not a run directory: {MANIFEST} is missing",
                             hint="pass a directory written by `harness run`")
        try:
            return Manifest.model_validate_json(contained(self.path, MANIFEST).read_text())
        except OSError as err:
            raise InputError(f"cannot read {path}: {err.strerror or err}") from None
        except ValidationError as err:
            raise InputError(f"{path} is not a valid manifest: {_manifest_problem(err)}",
                             hint=_manifest_hint(err)) from None
        except ValueError as err:
            raise InputError(f"{path} is not a valid manifest: {str(err).splitlines()[0]}") from None

    def write_manifest(self, manifest: Manifest) -> None:
        """Write manifest.json atomically."""
        write_json_atomic(self.manifest_path, manifest.model_dump(mode="json"))

    def hash_files(self) -> dict[str, str]:
        """sha256 of every regular file except the manifest, keyed by relative path."""
        return {
            str(p.relative_to(self.path)): sha256_file(p)
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
        }
