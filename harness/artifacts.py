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

import hashlib
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from harness.errors import ConfigError, InputError
from harness.redact import MARKER, redact_argv, redact_environment, redact_mapping
from harness.safe_paths import contained
from harness.types import RunStatus

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


class Manifest(BaseModel):
    """manifest.json: what ran, where, with what, and whether it may be submitted."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    status: RunStatus = RunStatus.RUNNING
    submittable: bool = False
    not_submittable_reasons: list[str] = Field(default_factory=list)
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
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


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
