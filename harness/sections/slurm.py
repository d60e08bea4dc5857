"""SlurmConfig: the typed, validated site settings for sbatch/srun/Pyxis (pure pydantic, no I/O)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.sections.fabric import fabric_problem, multinode_problem

# "MM", "MM:SS", "HH:MM:SS", "D-HH", "D-HH:MM", "D-HH:MM:SS" are what sbatch accepts; we take the two
# unambiguous spellings only, so that a config reads the same to every reader.
_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<h>\d{1,2}):(?P<m>[0-5]\d):(?P<s>[0-5]\d)$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# sbatch options the harness renders itself from typed fields; extra_args must not repeat them.
RENDERED_OPTIONS = ("--job-name", "--partition", "--account", "--nodes", "--ntasks-per-node", "--ntasks",
                    "--gpus-per-node", "--cpus-per-task", "--time", "--output", "--error", "--chdir",
                    "--dependency", "--container-image", "--container-mounts", "--container-workdir", "--mpi")
_SAFE_ARG = re.compile(r"^--[a-z][a-z0-9\-]*(=[A-Za-z0-9_.,:/@%+\-=\[\]]+)?$")


_SERVER_ARG = re.compile(r"^[A-Za-z0-9_.,:/@%+=\-\[\]]+$")


def _one_line(value: str, what: str) -> str:
    if not value or any(c in value for c in "\n\r\0"):
        raise ValueError(f"{what} must be a non-empty single line (got {value!r})")
    return value


class ServersConfig(BaseModel):
    """Serving-engine steps of the `serve*` stages: one server per replica, the harness as their HTTP client."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    count: int | None = Field(None, ge=1, description="servers (replicas); null = distributed.replicas")
    tensor_parallel_size: int = Field(1, ge=1, description="vLLM servers only (trtllm-serve takes backend's TP x PP)")
    port: int = Field(8000, ge=1024, le=65000, description="port of server 0; server i listens on port + i")
    bind_host: str = Field("0.0.0.0", description="--host the servers bind (0.0.0.0: reachable from the client node)")
    address: Literal["hostname", "nodeaddr"] = Field(
        "hostname", description="how the client reaches a server's node: its Slurm node name, or its NodeAddr")
    ready_timeout_s: float = Field(1800.0, gt=0, description="bounded wait for every server to load and answer")
    stop_timeout_s: float = Field(30.0, gt=0, description="after the client: SIGTERM, then SIGKILL after this")
    args: tuple[str, ...] = Field((), description="extra server CLI arguments, appended verbatim (no spaces)")

    @field_validator("bind_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9.:\-]+$", value):
            raise ValueError(f"bind_host {value!r} is not a host name or IP address")
        return value

    @field_validator("args")
    @classmethod
    def _check_args(cls, args: tuple[str, ...]) -> tuple[str, ...]:
        for arg in args:
            if not _SERVER_ARG.match(arg):
                raise ValueError(f"server arg {arg!r} holds spaces, quotes or shell characters (one token per entry)")
        return args


class SlurmConfig(BaseModel):
    """Where and how a stage runs under Slurm; rendered into #SBATCH lines and srun/Pyxis flags."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # rates and limits are finite

    partition: str | None = Field(None, description="sbatch --partition; null = the cluster default")
    account: str | None = Field(None, description="sbatch --account; null = the user's default")
    job_name: str = Field("mlperf-llm", description="prefix of the job name; the stage is appended")
    nodes: int = Field(1, ge=1, description="nodes per job")
    ntasks_per_node: int = Field(1, ge=1, description="MPI ranks per node")
    gpus_per_node: int = Field(0, ge=0, le=64, description="GPUs per node (0: none requested)")
    request_gpus: bool = Field(True, description="request them (--gpus-per-node, srun --gpus-per-node); false where "
                                                 "nodes come whole without GPU GRES, or for a dry run on CPUs")
    cpus_per_task: int | None = Field(None, ge=1, description="CPUs per rank; null = Slurm default")
    time_limit: str = Field("01:00:00", description='wall-clock limit, "HH:MM:SS" or "D-HH:MM:SS"')
    mpi: Literal["pmix", "pmix_v4", "pmix_v5"] = Field("pmix", description="srun --mpi plugin (Open MPI needs PMIx)")
    container_image: str | None = Field(None, description="Pyxis --container-image (squashfs path or registry ref)")
    container_mounts: tuple[str, ...] = Field((), description="Pyxis mounts, each SRC:DST[:FLAGS]")
    container_workdir: str | None = Field(None, description="Pyxis --container-workdir (absolute path)")
    workdir: str | None = Field(None, description="sbatch --chdir: where the job runs; null = submit dir")
    python: str = Field("python3", description="interpreter that runs `-m harness` inside the job")
    env: dict[str, str] = Field(default_factory=dict,
                                description="exported before srun, e.g. NCCL_IB_GID_INDEX, UCX_NET_DEVICES")
    extra_args: tuple[str, ...] = Field((), description="more #SBATCH options, each --name or --name=value")
    servers: ServersConfig = Field(default_factory=ServersConfig, description="serve* stages: the server steps")

    @field_validator("time_limit", mode="before")
    @classmethod
    def _refuse_yaml_number(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            raise ValueError(f'time_limit must be a quoted string such as "12:00:00"; got the number {value} '
                             "(YAML reads an unquoted 12:00:00 as 43200 seconds)")
        return value

    @field_validator("time_limit")
    @classmethod
    def _check_time(cls, value: str) -> str:
        match = _TIME.match(value)
        if match is None or int(match["h"]) > (23 if match["days"] else 99):
            raise ValueError(f'time_limit {value!r} is not "HH:MM:SS" or "D-HH:MM:SS" (e.g. "02:00:00")')
        if value.replace("-", ":").strip("0:") == "":
            raise ValueError(f"time_limit {value!r} is zero; give the job some time")
        return value

    @field_validator("partition", "account", "job_name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r} may hold only letters, digits, '_', '.', '-'")
        return value

    @field_validator("container_image", "python")
    @classmethod
    def _check_line(cls, value: str | None) -> str | None:
        return None if value is None else _one_line(value, "the value")

    @field_validator("container_mounts")
    @classmethod
    def _check_mounts(cls, mounts: tuple[str, ...]) -> tuple[str, ...]:
        for mount in mounts:
            parts = _one_line(mount, "a container mount").split(":")
            if len(parts) not in (2, 3) or not all(parts[:2]) or "," in mount:
                raise ValueError(f"container mount {mount!r} is not SRC:DST[:FLAGS] (e.g. /data:/data:ro)")
            if not parts[1].startswith("/"):
                raise ValueError(f"container mount {mount!r}: destination {parts[1]!r} must be absolute")
        return mounts

    @field_validator("container_workdir", "workdir")
    @classmethod
    def _check_absolute(cls, value: str | None) -> str | None:
        if value is not None and not _one_line(value, "a directory").startswith("/"):
            raise ValueError(f"{value!r} must be an absolute path")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _numbers_as_text(cls, env: object) -> object:
        """`UCX_IB_GID_INDEX: 3` in YAML (or --set ...=3) is the text "3" in the environment."""
        if isinstance(env, dict):
            return {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in env.items()}
        return env

    @field_validator("env")
    @classmethod
    def _check_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not _ENV_NAME.match(name):
                raise ValueError(f"environment name {name!r} is not UPPER_CASE letters, digits and '_'")
            if any(c in value for c in "\n\r\0"):
                raise ValueError(f"environment value of {name} holds a line break")
            problem = fabric_problem(name, value)
            if problem is not None:
                raise ValueError(problem)
        return env

    @model_validator(mode="after")
    def _fabric_fits_layout(self) -> SlurmConfig:
        problem = multinode_problem(self.env, self.nodes)
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("extra_args")
    @classmethod
    def _check_extra(cls, args: tuple[str, ...]) -> tuple[str, ...]:
        for arg in args:
            if not _SAFE_ARG.match(arg):
                raise ValueError(f"extra sbatch arg {arg!r} is not --name or --name=value without spaces or quotes")
            if arg.split("=", 1)[0] in RENDERED_OPTIONS:
                raise ValueError(f"extra sbatch arg {arg!r} repeats an option set by a typed field; use that field")
        return args

    @property
    def ntasks(self) -> int:
        """Total MPI ranks of a job."""
        return self.nodes * self.ntasks_per_node

    @property
    def uses_container(self) -> bool:
        """True when stages run inside a Pyxis container."""
        return self.container_image is not None
