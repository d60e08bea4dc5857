"""What a run records about itself: its manifest at the start, its input files, model hash and samples."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

from harness import artifacts
from harness.artifacts import Manifest, RunArtifacts
from harness.config import RunConfig
from harness.console import stderr
from harness.distributed.dispatch import DispatchBackend
from harness.errors import ConfigError, EnvironmentProblem, InputError
from harness.model_files import resolve_model
from harness.model_hash import model_sha256
from harness.redact import redact_text
from harness.rounds import round_spec
from harness.sut.base import SutCore
from harness.userconf import offline_query_blowup, render_user_conf

__all__ = ["HASH_NOTICE_BYTES", "model_details", "new_manifest", "write_inputs", "write_samples"]

HASH_NOTICE_BYTES = 1 << 30  # model files above this, not hashed before, get progress lines while hashed


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("mlperf-llm-harness", "mlcommons-loadgen", "numpy", "torch", "transformers", "tensorrt_llm",
                 "mpi4py", "nltk", "rouge-score", "rouge-score-rs"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}{'-dirty' if dirty else ''}"


def new_manifest(config: RunConfig, command: list[str]) -> Manifest:
    """The manifest of a run that is starting: what runs, where, with which versions and deviations."""
    return Manifest(
        round=config.round, benchmark=config.benchmark, scenario=config.scenario.value, mode=config.mode.value,
        compliance_test=config.compliance_test, backend=config.backend.kind,
        model=config.model.name or config.model.path or "embedded SmolLM2-135M-Instruct",
        command=artifacts.redacted_command(command), host=socket.gethostname(), started_at=artifacts.utc_now(),
        versions=_versions(),
        git_commit=_git_commit(), environment=artifacts.recorded_environment(),
        deviations=config.deviations() + ([f"model: SmolLM2-135M-Instruct instead of "
                                           f"{config.facts.reference_model.rsplit('/', 1)[-1]}"]
                                          if config.model.is_embedded else []),
        details={"cwd": os.getcwd(),  # the root that relative paths of `command` are relative to
                 **({"measurements": config.measurements_record()} if config.system else {})},
    )


def write_inputs(config: RunConfig, run: RunArtifacts, sample_count: int) -> tuple[Path | None, Path, list[str]]:
    """The config copy, the round's mlperf.conf and the user.conf; (mlperf.conf or None, user.conf, shortened keys).
    Refuses a config whose Offline query the round's LoadGen would blow up (harness.userconf)."""
    spec = round_spec(config.round)
    artifacts.write_text_atomic(run.file(artifacts.CONFIG), artifacts.config_text(config.model_dump(mode="json")))
    mlperf_conf = None
    if spec.mlperf_conf_text is not None:
        mlperf_conf = run.file(artifacts.MLPERF_CONF)
        artifacts.write_text_atomic(mlperf_conf, spec.mlperf_conf_text)
    user_conf = render_user_conf(config, sample_count)
    blowup = offline_query_blowup(config, user_conf.values)
    if blowup is not None:
        raise ConfigError(blowup, hint="the round pins this LoadGen: change the run's loadgen values as said")
    artifacts.write_text_atomic(run.file(artifacts.USER_CONF), user_conf.text)
    return mlperf_conf, run.file(artifacts.USER_CONF), user_conf.shortened


def _hash_progress(done: int, total: int) -> None:
    """Lines for the one-time hash of a large checkpoint (reading 140 GB takes minutes); silent below 1 GiB."""
    if total < HASH_NOTICE_BYTES:
        return
    if done == 0:
        stderr.print(f"hashing the model files once ({total / 2**30:.1f} GiB not hashed before; later runs reuse "
                     "the cached digests)", markup=False)
    else:
        stderr.print(f"hashing the model files: {done / 2**30:.1f} of {total / 2**30:.1f} GiB", markup=False)


def model_details(config: RunConfig, show_progress: bool) -> dict[str, str]:
    """details.model_files and details.model_sha256 of the model files this run loads (cached per path, size and
    mtime by harness.model_hash, so a large checkpoint is read once); {} for backends that load none."""
    if not config.backend.loads_model_files:
        return {}
    try:
        files = resolve_model(config.model.path)
    except (InputError, EnvironmentProblem):  # the backend names a missing model when it loads it
        return {}
    hashed, digest = model_sha256(files, progress=_hash_progress if show_progress else None)
    return {"model_files": redact_text(hashed), "model_sha256": digest}


def write_samples(run: RunArtifacts, sut: SutCore, dispatcher: DispatchBackend | None) -> None:
    """samples.jsonl: one record per sample the SUT answered (with its replica when several served)."""
    replicas = dispatcher.assignments if dispatcher is not None else None
    lines = [json.dumps(record) for record in sut.records.as_json(replicas)]
    artifacts.write_text_atomic(run.file(artifacts.SAMPLES), "\n".join(lines) + ("\n" if lines else ""))
