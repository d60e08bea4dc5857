"""TensorRT-LLM in Slurm jobs: the quantize/convert/build stage builders and the trtllm-llmapi-launch prefix."""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.trtllm.options import TrtllmOptions
from harness.backends.trtllm.preparation import (
    PREPARATION_STAGES,
    check_launchable,
    launch_prefix,
    pipeline_for,
    stage_commands,
)
from harness.benchmarks.registry import benchmark_facts
from harness.config import RunConfig
from harness.errors import ConfigError
from harness.slurm.commands import JOB_ID, StageBuilder, StageCommand, StageOptions, TasksLayout

__all__ = ["REPLICA_REFUSAL", "launcher_argv", "preparation_builders"]

REPLICA_REFUSAL = (
    "distributed.replicas is {replicas} with backend.kind trtllm: each harness rank would build its own "
    "LLM(tensor_parallel_size={tp}), which starts its executor workers through MPI_Comm_spawn (MpiPoolSession); "
    "that fails inside an srun job step (NVIDIA/TensorRT-LLM#5495, ai-dynamo/dynamo#808)")
REPLICA_HINT = ("render the serve stages instead (`harness slurm render serve|serve_accuracy|serve_compliance`): one "
                "trtllm-serve step per replica under trtllm-llmapi-launch, the harness as their HTTP client "
                "(docs/tensorrt-llm.md)")


def _trtllm_options(config: RunConfig) -> TrtllmOptions:
    if not isinstance(config.backend, TrtllmOptions):
        raise ConfigError(f"quantize/convert/build stages need backend.kind trtllm; the config has "
                          f"{config.backend.kind!r}", hint="set backend.kind: trtllm (see docs/tensorrt-llm.md)")
    return config.backend


def _builder(name: str) -> StageBuilder:
    def build(config: RunConfig, options: StageOptions) -> StageCommand:
        pipe = pipeline_for(_trtllm_options(config), config.model, options.extra, config.benchmark)
        found = {command.name: command for command in stage_commands(pipe)}
        if name not in found:
            raise ConfigError(f"the TensorRT-LLM stages for this config ({', '.join(found) or 'none'}) have no "
                              f"{name} step", hint="render the listed stages, or change backend.stages.preset")
        command = found[name]
        gpus = config.slurm.gpus_per_node or 8
        paths = (("the HF checkpoint", pipe.hf_model_dir), ("the TensorRT-LLM work directory", pipe.work_dir))
        requires: tuple[tuple[str, str], ...] = ()
        if name == "quantize":
            paths += (("the calibration dataset", pipe.calibration_dir),)
            source = benchmark_facts(config.benchmark).calibration_file or "the benchmark's MLCommons calibration file"
            requires = ((f"the calibration dataset (write it with: harness dataset calibration {source} "
                         "<the host path below>)", pipe.calibration_dir),)
        return StageCommand(tuple(command.argv), command.description, True, TasksLayout(1, 1, gpus, mpi=False),
                            paths=paths, requires=requires)

    return build


def preparation_builders() -> dict[str, StageBuilder]:
    """Stage name -> builder for quantize, convert and build (one node, one task each)."""
    return {name: _builder(name) for name in PREPARATION_STAGES}


def launcher_argv(config: RunConfig, argv: Sequence[str]) -> tuple[str, ...]:
    """argv behind trtllm-llmapi-launch when the run serves one TP x PP > 1 model; checks the task count.
    Any other backend, or a trtllm layout that needs no launcher, gets argv unchanged."""
    backend = config.backend
    if not isinstance(backend, TrtllmOptions):
        return tuple(argv)
    if config.distributed.replicas > 1:
        raise ConfigError(REPLICA_REFUSAL.format(replicas=config.distributed.replicas,
                                                 tp=backend.tensor_parallel_size), hint=REPLICA_HINT)
    prefix = launch_prefix(backend, config.distributed.replicas)
    if not prefix:
        return tuple(argv)
    ranks = config.slurm.nodes * config.slurm.ntasks_per_node
    if ranks != backend.gpus_per_replica:
        per_node = min(backend.gpus_per_replica, config.slurm.gpus_per_node or 8)
        raise ConfigError(
            f"slurm.nodes x slurm.ntasks_per_node = {ranks} ranks, but trtllm-llmapi-launch needs one rank per GPU "
            f"of the TP x PP = {backend.gpus_per_replica} model",
            hint=f"set slurm.nodes: {-(-backend.gpus_per_replica // per_node)} and slurm.ntasks_per_node: {per_node}")
    check_launchable([arg.replace(JOB_ID, "0") for arg in argv])
    return (*prefix, *argv)
