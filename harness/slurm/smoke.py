"""The in-image smoke stage: inside the model stages' Pyxis container, on CPUs, before any model stage.

Every rank of one `srun --mpi=pmix` step (the run stage's layout: same nodes, same ranks per node, no GPUs
requested) runs a probe script written next to the job (``<job dir>/smoke.probe.sh``). Each check prints
one line (``[smoke] ok ...`` or ``[smoke] FAIL ...``) and the step exits 3 when one failed, so the job fails and
an ``afterok`` chain stops before the first GPU hour is spent:

- PMIx: ``PMIX_RANK`` is set on every rank and equals ``SLURM_PROCID`` (Pyxis only passes PMIx into the
  container with enroot's PMIx hook, ``hooks/extra/50-slurm-pmi.sh``, which is off by default);
- the fabric variables of ``slurm.env`` (NCCL_*, UCX_*) arrive in the container with the configured values,
  each ``NCCL_SOCKET_IFNAME`` interface exists, ``ucx_info -v`` runs and every ``UCX_NET_DEVICES`` entry is a
  device that ``ucx_info -d`` lists (ucx_info may only be absent on one node without UCX_* settings);
- on rank 0, ``--help`` of every entry point the pipeline's jobs call (``trtllm-build``, ``trtllm-serve``,
  ``python3 .../quantize.py``, ``python3 .../convert_checkpoint.py``, ``python3 -m harness``...), which must exit
  0 and print a usage line; ``trtllm-llmapi-launch`` has no ``--help`` (it runs its arguments), so it must be
  an executable on PATH.
The entry points come from the argv of the stages that the pipeline renders (or, for a smoke stage rendered
on its own, of every registered stage this config can render), so they match the release range's paths.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import PurePosixPath

from harness.backends.trtllm.serving import LAUNCHER
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.slurm.commands import StageCommand, StageOptions, TasksLayout

__all__ = ["FABRIC_VARIABLES", "PROBE_SUFFIX", "SMOKE", "entry_point_checks", "probe_script", "smoke_builder"]

SMOKE = "smoke"
PROBE_SUFFIX = ".probe.sh"
HELP_TIMEOUT_S = 300  # importing tensorrt_llm for --help takes tens of seconds on a cold file system
FABRIC_VARIABLES = ("NCCL_IB_HCA", "NCCL_SOCKET_IFNAME", "NCCL_IB_GID_INDEX", "NCCL_NET", "NCCL_IB_DISABLE",
                    "UCX_NET_DEVICES", "UCX_IB_GID_INDEX", "UCX_TLS", "OMPI_MCA_pml", "OMPI_MCA_btl")

Check = tuple[str, tuple[str, ...]]  # ("help", argv) runs argv --help; ("exists", (program,)) needs it on PATH


def _is_python(program: str, python: str) -> bool:
    return program == python or PurePosixPath(program).name.startswith("python")


def _checks_of(argv: Sequence[str], python: str) -> list[Check]:
    checks: list[Check] = []
    rest = list(argv)
    if rest[:1] == [LAUNCHER]:
        checks.append(("exists", (LAUNCHER,)))
        rest = rest[1:]
    if not rest:
        return checks
    if _is_python(rest[0], python) and len(rest) > 2 and rest[1] == "-m":
        checks.append(("help", (rest[0], "-m", rest[2])))
    elif _is_python(rest[0], python) and len(rest) > 1 and rest[1].endswith(".py"):
        checks.append(("help", (rest[0], rest[1])))
    elif rest[0] not in ("bash", "sh"):
        checks.append(("help", (rest[0],)))
    return checks


def entry_point_checks(commands: Iterable[StageCommand], python: str) -> list[Check]:
    """The distinct entry-point checks of these stages (their command, and each server step's), in order."""
    found: list[Check] = []
    for command in commands:
        for argv in (command.argv, *(step.argv for step in command.servers)):
            found += [c for c in _checks_of(argv, python) if c not in found]
    return found


def _env_checks(config: RunConfig) -> str:
    lines = [f"expect_env {name} {shlex.quote(config.slurm.env[name])}"
             for name in FABRIC_VARIABLES if name in config.slurm.env]
    return "\n".join(lines) or "# (slurm.env sets none of the fabric variables)"


def _entry_checks(checks: Sequence[Check]) -> str:
    lines = []
    for kind, argv in checks:
        words = " ".join(shlex.quote(a) for a in argv)
        lines.append(f"  check_help {words}" if kind == "help" else f"  check_exists {words}")
    return "\n".join(lines) or "  : # no entry points"


class _Template(string.Template):
    delimiter = "@"  # bash owns "$"


def probe_script(config: RunConfig, checks: Sequence[Check]) -> str:
    """The probe's bash text (run by every rank inside the container)."""
    slurm = config.slurm
    ucx_needed = slurm.nodes > 1 or any(name.startswith("UCX_") for name in slurm.env)
    text = resources.files("harness.slurm").joinpath("templates/smoke_probe.sh.tmpl").read_text()
    return _Template(text).substitute(
        stage=SMOKE, mpi=slurm.mpi, env_checks=_env_checks(config), ucx_needed="true" if ucx_needed else "false",
        help_timeout_s=HELP_TIMEOUT_S, entry_checks=_entry_checks(checks))


StageLister = Callable[[RunConfig, StageOptions], list[StageCommand]]


def smoke_builder(stages_of: StageLister) -> Callable[[RunConfig, StageOptions], StageCommand]:
    """The smoke stage's builder; stages_of gives the StageCommands whose entry points it checks."""
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        if not options.config_path.endswith(".config.yaml"):
            raise ConfigError(f"smoke stage: config path {options.config_path} is not <job dir>/<stage>.config.yaml")
        probe = options.config_path.removesuffix(".config.yaml") + PROBE_SUFFIX
        checks = entry_point_checks(stages_of(config, options), config.slurm.python)
        slurm = config.slurm
        layout = TasksLayout(slurm.nodes, slurm.ntasks_per_node, 0, mpi=True)
        what = ", ".join(" ".join(argv) for _, argv in checks) or "none"
        return StageCommand(("bash", probe), f"in-image smoke test (CPU only): PMIx on every rank, UCX and fabric "
                                             f"variables, entry points: {what}", False, layout,
                            paths=(("the smoke probe", probe),), files=((probe, probe_script(config, checks)),),
                            fail_fast=False)

    return build
