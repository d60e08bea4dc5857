"""Submit rendered stages with sbatch, chain them with afterok dependencies, and read job state back."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.config import RunConfig
from harness.errors import ConfigError, EnvironmentProblem, RunError
from harness.slurm.render import RenderedJob, render_job
from harness.slurm.smoke import SMOKE

_JOB_ID = re.compile(r"^\d+(_\d+)?$")
_TIMEOUT_S = 60


@dataclass(frozen=True)
class SubmittedJob:
    """One sbatch submission: the stage, its Slurm job id and its script."""

    stage: str
    job_id: str
    script_path: Path
    depends_on: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """Where a job stands: Slurm state (PENDING, RUNNING, COMPLETED, FAILED...), exit code, reason."""

    job_id: str
    state: str
    exit_code: str = ""
    reason: str = ""
    source: str = ""

    @property
    def finished(self) -> bool:
        """True once the job left the queue for good."""
        return self.state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EnvironmentProblem(f"{name} is not on PATH; Slurm client commands are needed",
                                 hint="run on a Slurm login node, or start a local cluster with "
                                      "scripts/slurm-local.sh start DIR and export the SLURM_CONF it prints")
    return path


def _call(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"{' '.join(argv)} did not answer within {_TIMEOUT_S} s",
                                 hint="is slurmctld up? check `scontrol ping`") from None


def check_job_id(job_id: str) -> str:
    """Validate a Slurm job id (digits, or digits_digits for an array task)."""
    if not _JOB_ID.match(job_id):
        raise ConfigError(f"job id {job_id!r} is not a Slurm job id", hint="e.g. 1234 or 1234_7")
    return job_id


def sbatch(script: Path, after: Sequence[str] = ()) -> str:
    """Submit a script; with `after`, it starts only once those jobs completed successfully (afterok)."""
    argv = [_tool("sbatch"), "--parsable"]
    if after:
        argv.append("--dependency=afterok:" + ":".join(check_job_id(j) for j in after))
    done = _call([*argv, str(script)])
    if done.returncode != 0:
        message = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise RunError(f"sbatch {script} failed (exit {done.returncode}): {message[-1] if message else ''}",
                       hint="check the #SBATCH lines against the partition's limits (`sinfo`)")
    job_id = done.stdout.strip().split(";")[0]
    return check_job_id(job_id)


def submit_stage(job: RenderedJob, after: str | None = None) -> SubmittedJob:
    """sbatch one rendered stage."""
    return SubmittedJob(job.stage, sbatch(job.script_path, [after] if after else []), job.script_path, after)


def with_smoke(stages: Sequence[str], config: RunConfig, smoke: bool | None = None) -> list[str]:
    """The pipeline's stages, with the in-image smoke stage first when asked (smoke=True), or by default
    (smoke=None) when the stages run in a container (slurm.container_image) and one of them is a model stage.
    smoke=False leaves the list as given; a smoke stage already listed must come first."""
    names = list(stages)
    if SMOKE in names:
        if names[0] != SMOKE:
            raise ConfigError(f"stage list {','.join(names)}: smoke must come first (it guards the model stages)",
                              hint=f"e.g. --stages {SMOKE},{','.join(n for n in names if n != SMOKE)}")
        return names
    model_stage = any(name != "preflight" for name in names)
    wanted = smoke if smoke is not None else (config.slurm.uses_container and model_stage)
    return [SMOKE, *names] if wanted else names


def submit_pipeline(stages: Sequence[str], config: RunConfig, job_dir: Path, source: str | None = None,
                    overwrite: bool = False, smoke: bool | None = False) -> list[SubmittedJob]:
    """Render every stage first, then submit them in order, each afterok on the previous one. smoke: see
    with_smoke (the CLI passes None, the container default; False here keeps a library caller's list)."""
    if not stages:
        raise ConfigError("no stages given for the pipeline", hint="e.g. --stages run,accuracy")
    if len(set(stages)) != len(stages):
        raise ConfigError(f"stage list {','.join(stages)} repeats a stage", hint="name each stage once")
    stages = with_smoke(stages, config, smoke)
    extra = {"stages": ",".join(stages)}
    rendered = [render_job(stage, config, job_dir, source, overwrite, extra if stage == SMOKE else None)
                for stage in stages]
    submitted: list[SubmittedJob] = []
    for job in rendered:
        submitted.append(submit_stage(job, submitted[-1].job_id if submitted else None))
    return submitted


def _squeue(job_id: str) -> JobStatus | None:
    done = _call([_tool("squeue"), "-h", "-j", job_id, "-o", "%T|%r"])
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    if not line:
        return None
    state, _, reason = line.partition("|")
    return JobStatus(job_id, state, reason="" if reason == "None" else reason, source="squeue")


def parse_scontrol(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of `scontrol show job` output (values without spaces are all we read)."""
    pairs: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and key not in pairs:
            pairs[key] = value
    return pairs


def _scontrol(job_id: str) -> JobStatus | None:
    done = _call([_tool("scontrol"), "show", "job", job_id])
    fields = parse_scontrol(done.stdout) if done.returncode == 0 else {}
    if "JobState" not in fields:
        return None
    reason = fields.get("Reason", "")
    return JobStatus(job_id, fields["JobState"], fields.get("ExitCode", ""), "" if reason == "None" else reason,
                     "scontrol")


def _sacct(job_id: str) -> JobStatus | None:
    if shutil.which("sacct") is None:
        return None
    done = _call(["sacct", "-n", "-P", "-X", "-j", job_id, "-o", "State,ExitCode"])
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    if "|" not in line:
        return None
    state, exit_code = line.split("|")[:2]
    return JobStatus(job_id, state.split()[0], exit_code, source="sacct")


def job_status(job_id: str) -> JobStatus:
    """The job's state from scontrol (exit code included), else squeue, else sacct (accounting)."""
    check_job_id(job_id)
    for probe in (_scontrol, _squeue, _sacct):
        status = probe(job_id)
        if status is not None:
            return status
    raise ConfigError(f"Slurm knows no job {job_id} (not in squeue, scontrol or sacct)",
                      hint="finished jobs leave scontrol after MinJobAge; sacct needs job accounting")
