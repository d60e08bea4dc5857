"""Builds the backend the SUT talks to: one backend, local replicas, or MPI worker replicas.

Layouts (world = MPI world size, from harness.distributed.launch):
- world 1, replicas 1: the configured backend itself.
- world 1, replicas N: N in-process replicas (one per GPU: cuda:0 … cuda:N-1), least-in-flight routed.
- world W > 1: rank 0 runs LoadGen and (unless distributed.loadgen_rank_hosts_replica is false) one
  replica; every other rank serves one replica over MPI. distributed.replicas must equal that count
  (1, the default, means "as many as the launch provides").
A replica is the unit a future TensorRT-LLM TP×PP group maps onto: its leader rank is the one that talks
to rank 0 (harness.distributed.transport), whatever ranks the group spans.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.backends.base import Backend, create
from harness.config import RunConfig, apply_overrides
from harness.distributed.dispatch import DispatchBackend
from harness.distributed.launch import LaunchContext
from harness.errors import ConfigError
from harness.types import Scenario


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


def replica_config(config: RunConfig, index: int) -> RunConfig:
    """The config of replica `index`: an hf replica on CUDA gets its own GPU."""
    if config.backend.kind != "hf" or config.backend.device not in ("auto", "cuda"):
        return config
    # "auto:N": the hf backend picks GPU N (modulo the GPUs it sees) when CUDA is available, else the CPU.
    return apply_overrides(config, [f"backend.device=auto:{index}"])


def _chunk(config: RunConfig) -> int:
    """Offline: whole batches per replica, so batches are composed exactly as in one process."""
    if config.scenario is Scenario.OFFLINE and config.backend.kind == "hf":
        return config.backend.max_batch_size
    return 1


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


def build_backend(config: RunConfig, ctx: LaunchContext, on_worker_lost: Callable[[str], None]) -> BackendPlan:
    """The backend rank 0 gives to the SUT."""
    count = replica_count(config, ctx)
    if not ctx.distributed and count == 1:
        return BackendPlan(create(config), None, lambda: None)
    if not ctx.distributed:
        replicas = [create(replica_config(config, i)) for i in range(count)]
        dispatcher = DispatchBackend(replicas, [f"local {i}" for i in range(count)], _chunk(config))
        return BackendPlan(dispatcher, dispatcher, lambda: None)
    from harness.distributed.transport import Receiver, RemoteReplica, world

    comm = world()
    receiver = Receiver(comm, config.distributed.worker_timeout_s, on_worker_lost)
    hosts_local = config.distributed.loadgen_rank_hosts_replica
    members: list[Backend] = [create(replica_config(config, _local_rank()))] if hosts_local else []
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

    replica_count(config, ctx)
    serve_worker(world(), ctx.host, lambda: create(replica_config(config, _local_rank())),
                 config.distributed.worker_timeout_s)
