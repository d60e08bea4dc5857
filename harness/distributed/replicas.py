"""Builds the backend the SUT talks to: one backend, local replicas, or MPI worker replicas.

Layouts (world = MPI world size, from harness.distributed.launch):
- world 1, replicas 1: the configured backend itself.
- world 1, replicas N: N in-process replicas (one per GPU: cuda:0 … cuda:N-1), least-in-flight routed.
- world W > 1: rank 0 runs LoadGen and (unless distributed.loadgen_rank_hosts_replica is false) one
  replica; every other rank serves one replica over MPI. distributed.replicas must equal that count
  (1, the default, means "as many as the launch provides").
A replica is the unit a future TensorRT-LLM TP×PP group maps onto: its leader rank is the one that talks
to rank 0 (harness.distributed.transport), whatever ranks the group spans.

This module is the one place where the run config meets the engines: `backend_setup` turns it into what
a factory receives (its own options, specialised per replica by the options themselves, and a
BackendSetup), so no backend sees RunConfig and this layer knows no engine by name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends import registry
from harness.backends.base import Backend, BackendSetup
from harness.backends.cache import CachedBackend, OutputCache, cache_key
from harness.backends.sampling import sampling_spec
from harness.checkpoint import converted_checkpoint
from harness.config import RunConfig
from harness.distributed.dispatch import DispatchBackend
from harness.distributed.launch import LaunchContext
from harness.errors import ConfigError
from harness.model_files import EMBEDDED_NAME
from harness.settings import ModelConfig
from harness.tokenizer import eos_token_id, extra_stop_ids, load_tokenizer
from harness.types import Scenario, TestMode

__all__ = ["BackendPlan", "backend_setup", "build_backend", "check_engine", "create_backend", "engine_model",
           "init_mpi", "replica_count", "serve", "stop_ids", "wrap_with_cache"]


def _no_remote_snapshots() -> list[Any]:
    return []


@dataclass
class BackendPlan:
    """The backend for rank 0, the dispatcher when there are replicas, cleanup, and remote counter reads."""

    backend: Backend
    dispatcher: DispatchBackend | None
    close: Callable[[], None]
    remote_counter_snapshots: Callable[[], list[Any]] = _no_remote_snapshots


def _local_rank() -> int:
    for name in ("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def engine_model(config: RunConfig) -> ModelConfig:
    """The model section as the engine receives it: for an engine that loads only HF checkpoint directories
    (vllm), a GGUF model (the embedded default, or a .gguf path) becomes its safetensors checkpoint, converted
    once into the cache by harness.checkpoint; every other engine gets the section unchanged.

    Here, not in the engine: converting is a model-file step shared with the endpoint tests and the layers
    forbid harness.backends to import harness.checkpoint; the tokenizer, the output-cache key and the
    manifest keep naming the original model.
    """
    model = config.model
    if not config.backend.reads_checkpoint_directory() or (model.path is not None and Path(model.path).is_dir()):
        return model
    name = model.name or (EMBEDDED_NAME if model.is_embedded else Path(str(model.path)).name)
    return model.model_copy(update={"path": str(converted_checkpoint(model.path)), "name": name})


def stop_ids(config: RunConfig, tokenizer: Any, eos: int) -> tuple[int, ...]:
    """Ids besides EOS that end an answer: model.stop_token_ids, else the checkpoint's generation_config.json; plus
    the benchmark's own (gpt-oss-120b: harmony's) when the tokenizer's vocabulary holds them (the embedded
    SmolLM2 on a smoke set keeps its own)."""
    found = extra_stop_ids(config.model.path, eos, config.model.stop_token_ids)
    extra = config.facts.generation.stop_token_ids
    if extra and config.model.stop_token_ids is None and all(i < len(tokenizer) for i in extra):
        found = tuple(dict.fromkeys(i for i in (*found, *extra) if i != eos))
    return found


def backend_setup(config: RunConfig, tokenizer: Any, replica_index: int = 0, replicas: int = 1) -> BackendSetup:
    """What a backend factory receives from this run: model, decoding (EOS/pad from the tokenizer), streaming."""
    eos = eos_token_id(tokenizer, config.model.eos_token_id)
    spec = sampling_spec(config.generation, eos, tokenizer.pad_token_id, stop_ids(config, tokenizer, eos))

    def oracle_answers() -> list[list[int]]:
        from harness.dataset import oracle_texts

        return [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in oracle_texts(config)]

    return BackendSetup(model=engine_model(config), sampling=spec,
                        streams_first_token=config.scenario.streams_first_token, replica_index=replica_index,
                        replicas=replicas, oracle_answers=oracle_answers,
                        tokenizer=tokenizer)


def check_engine(config: RunConfig) -> None:
    """EnvironmentProblem (exit 3) now when the configured engine cannot run here, before anything is prepared."""
    registry.check_environment(config.backend.kind)


def create_backend(config: RunConfig, tokenizer: Any, replica_index: int = 0, replicas: int = 1) -> Backend:
    """The configured engine for one replica (built, not started)."""
    registry.check_environment(config.backend.kind)
    setup = backend_setup(config, tokenizer, replica_index, replicas)
    alone = replicas == 1 and replica_index == 0
    return registry.create(config.backend if alone else config.backend.for_replica(replica_index), setup)


def _chunk(config: RunConfig) -> int:
    """How many consecutive requests one replica takes (the engine's options decide)."""
    return config.backend.dispatch_chunk(config.scenario is Scenario.OFFLINE)


def wrap_with_cache(config: RunConfig, dataset_sha256: str, backend: Backend) -> Backend:
    """The backend itself, or a CachedBackend when config.cache is set and the run is in accuracy mode."""
    if config.cache is None or config.mode is not TestMode.ACCURACY:
        return backend
    directory = Path(config.cache)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"cache is {directory}, which is a file; expected a directory for output caches",
                          hint="set cache to a directory path (it is created when missing)")
    key = cache_key(config.model_dump(mode="json"), dataset_sha256, config.model.path,
                    config.backend.reads_model_files)
    return CachedBackend(backend, OutputCache(directory / f"{key}.jsonl"), key)


def replica_count(config: RunConfig, ctx: LaunchContext) -> int:
    """How many replicas the launch provides; a mismatch with distributed.replicas is a ConfigError."""
    if not ctx.distributed:
        return config.distributed.replicas
    provided = ctx.world_size - (0 if config.distributed.loadgen_rank_hosts_replica else 1)
    wanted = config.distributed.replicas
    if wanted not in (1, provided):
        raise ConfigError(
            f"distributed.replicas is {wanted}, but the launch has {ctx.world_size} ranks "
            f"({ctx.launcher}), which hold {provided} replica(s)",
            hint=f"launch {wanted + (0 if config.distributed.loadgen_rank_hosts_replica else 1)} ranks, "
                 f"or set distributed.replicas={provided}",
        )
    if provided < 1:
        raise ConfigError("the launch has 1 rank and distributed.loadgen_rank_hosts_replica is false: no replica",
                          hint="launch at least 2 ranks, or let rank 0 host a replica")
    return provided


def build_backend(config: RunConfig, ctx: LaunchContext, tokenizer: Any,
                  on_worker_lost: Callable[[str], None]) -> BackendPlan:
    """The backend rank 0 gives to the SUT."""
    count = replica_count(config, ctx)
    if not ctx.distributed and count == 1:
        return BackendPlan(create_backend(config, tokenizer), None, lambda: None)
    if not ctx.distributed:
        replicas = [create_backend(config, tokenizer, i, count) for i in range(count)]
        dispatcher = DispatchBackend(replicas, [f"local {i}" for i in range(count)], _chunk(config))
        return BackendPlan(dispatcher, dispatcher, lambda: None)
    from harness.distributed.transport import Receiver, RemoteReplica, world

    comm = world()
    receiver = Receiver(comm, config.distributed.worker_timeout_s, on_worker_lost)
    hosts_local = config.distributed.loadgen_rank_hosts_replica
    members: list[Backend] = [create_backend(config, tokenizer, _local_rank(), count)] if hosts_local else []
    names = [f"rank 0 ({ctx.host})"] if hosts_local else []
    for rank in range(1, ctx.world_size):
        members.append(RemoteReplica(comm, rank, receiver))
        names.append(f"rank {rank}")
    receiver.start()
    dispatcher = DispatchBackend(members, names, _chunk(config))
    return BackendPlan(dispatcher, dispatcher, receiver.close, receiver.gather_snapshots)


def init_mpi(ctx: LaunchContext) -> None:
    """Initialise MPI at once on every rank, before slow model loading, so that no rank waits in MPI_Init."""
    if ctx.distributed:
        from harness.distributed.transport import world

        world()


def serve(config: RunConfig, ctx: LaunchContext) -> None:
    """Worker rank: serve one replica until rank 0 says stop."""
    from harness.distributed.transport import serve_worker, world

    count = replica_count(config, ctx)

    def make_backend() -> Backend:
        tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
        return create_backend(config, tokenizer, _local_rank(), count)

    serve_worker(world(), ctx.host, make_backend, config.distributed.worker_timeout_s)
