"""TensorRT-LLM in harness.slurm: quantize/convert/build stage builders and the trtllm-llmapi-launch prefix.

harness.slurm.stages registers the builders of slurm_builders() and puts launcher_argv() in front of every
harness run command, so `harness slurm render quantize|convert|build|run` renders the TensorRT-LLM flow
with the same renderer (and validation) as every other stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from harness.config import RunConfig, TrtllmConfig
from harness.errors import ConfigError
from harness.trtllm_stages import check_launchable, launch_prefix, pipeline_for, stage_commands

if TYPE_CHECKING:
    from harness.slurm.stages import StageCommand, StageOptions

PREPARATION_STAGES = ("quantize", "convert", "build")
_JOB_ID = "${SLURM_JOB_ID}"  # expanded by the job shell before trtllm-llmapi-launch sees it


def _builder(name: str) -> Callable[[RunConfig, StageOptions], StageCommand]:
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        from harness.slurm.stages import StageCommand, TasksLayout

        pipe = pipeline_for(config, options.extra)
        found = {command.name: command for command in stage_commands(pipe)}
        if name not in found:
            raise ConfigError(f"the TensorRT-LLM stages for this config ({', '.join(found) or 'none'}) have no "
                              f"{name} step", hint="render the listed stages, or change backend.stages.preset")
        command = found[name]
        gpus = config.slurm.gpus_per_node or 8
        return StageCommand(tuple(command.argv), command.description, True, TasksLayout(1, 1, gpus, mpi=False))

    return build


def slurm_builders() -> dict[str, Callable[[RunConfig, StageOptions], StageCommand]]:
    """Stage name -> builder for harness.slurm.stages.register (one node, one task each)."""
    return {name: _builder(name) for name in PREPARATION_STAGES}


def launcher_argv(config: RunConfig, argv: Sequence[str]) -> tuple[str, ...]:
    """argv behind trtllm-llmapi-launch when the run serves one TP x PP > 1 model; checks the task count."""
    prefix = launch_prefix(config)
    if not prefix:
        return tuple(argv)
    backend = config.backend
    assert isinstance(backend, TrtllmConfig)
    ranks = config.slurm.nodes * config.slurm.ntasks_per_node
    if ranks != backend.gpus_per_replica:
        per_node = min(backend.gpus_per_replica, config.slurm.gpus_per_node or 8)
        raise ConfigError(
            f"slurm.nodes x slurm.ntasks_per_node = {ranks} ranks, but trtllm-llmapi-launch needs one rank per GPU "
            f"of the TP x PP = {backend.gpus_per_replica} model",
            hint=f"set slurm.nodes: {-(-backend.gpus_per_replica // per_node)} and slurm.ntasks_per_node: {per_node}")
    check_launchable([arg.replace(_JOB_ID, "0") for arg in argv])
    return (*prefix, *argv)
