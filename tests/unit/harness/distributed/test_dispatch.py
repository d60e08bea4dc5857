"""Least-in-flight dispatch over replicas, with whole-batch chunks for Offline."""

from __future__ import annotations

from collections.abc import Sequence

from harness.backends.base import BackendInfo, BackendReport, TokenSink, UnitLoad
from harness.distributed.dispatch import DispatchBackend
from harness.distributed.launch import detect
from harness.types import GenerationRequest
from tests.unit.harness.backends.sinks import PerRequestSink


class _Replica:
    """A replica that holds requests until told to answer (to control in-flight counts)."""

    def __init__(self) -> None:
        self.held: list[tuple[GenerationRequest, TokenSink]] = []
        self.sink: TokenSink | None = None

    def start(self, sink: TokenSink) -> BackendInfo:
        self.sink = sink
        return BackendInfo(name="held", eos_token_id=2, max_batch_size=4, streaming=True)

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        assert self.sink is not None
        self.held.extend((r, self.sink) for r in requests)

    def answer_all(self) -> None:
        held, self.held = self.held, []
        for request, sink in held:
            sink.complete_batch([(request.request_id, [1, 2])])

    def cancel_all(self) -> None: ...

    def stop(self) -> None: ...

    def report(self) -> BackendReport:
        return BackendReport((UnitLoad(f"unit of {id(self)}", requests=len(self.held)),), {"kind": {"held": True}})


class _Sink(PerRequestSink):
    def __init__(self) -> None:
        self.completed: list[int] = []

    def first_token(self, request_id: int, token_id: int) -> None: ...

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self.completed.append(request_id)

    def fail(self, request_id: int, error: BaseException) -> None: ...


def _requests(ids: range) -> list[GenerationRequest]:
    return [GenerationRequest(i, i, (1, 2, 3)) for i in ids]


def test_requests_go_to_the_replica_with_fewest_in_flight() -> None:
    replicas = [_Replica(), _Replica(), _Replica()]
    dispatcher = DispatchBackend(replicas)
    sink = _Sink()
    info = dispatcher.start(sink)
    assert info.max_batch_size == 12 and info.name.startswith("3×")
    dispatcher.submit(_requests(range(0, 6)))
    assert [len(r.held) for r in replicas] == [2, 2, 2]
    replicas[1].answer_all()
    dispatcher.submit(_requests(range(6, 8)))
    assert [len(r.held) for r in replicas] == [2, 2, 2]
    assert dispatcher.assignments[6] == 1 and dispatcher.assignments[7] == 1
    assert dispatcher.completed == [0, 2, 0] and dispatcher.in_flight == [2, 2, 2]


def test_offline_chunks_keep_whole_batches_together() -> None:
    replicas = [_Replica(), _Replica()]
    dispatcher = DispatchBackend(replicas, chunk=4)
    dispatcher.start(_Sink())
    dispatcher.submit(_requests(range(10)))
    assert [r.request_id for r, _ in replicas[0].held] == [0, 1, 2, 3, 8, 9]
    assert [r.request_id for r, _ in replicas[1].held] == [4, 5, 6, 7]


def test_launch_context_from_open_mpi_and_slurm_variables() -> None:
    ctx = detect({"OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_SIZE": "3"})
    assert (ctx.rank, ctx.world_size, ctx.launcher, ctx.is_loadgen_rank) == (2, 3, "mpirun", False)
    ctx = detect({"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "4", "SLURM_STEP_ID": "0"})
    assert ctx.launcher == "srun --mpi=pmix" and ctx.distributed
    assert detect({}).world_size == 1


def test_launch_context_under_srun_pmix_uses_the_step_task_count() -> None:
    ctx = detect({"PMIX_RANK": "1", "SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "3", "SLURM_NTASKS": "6"})
    assert (ctx.rank, ctx.world_size, ctx.launcher) == (1, 3, "srun --mpi=pmix")


def test_batches_and_rows_keep_the_per_replica_counts() -> None:
    import numpy as np

    class _Batcher(_Replica):
        def answer_all(self) -> None:
            held, self.held = self.held, []
            sink = held[0][1]
            sink.complete_rows([r.request_id for r, _ in held[:2]], np.array([[5, 2, 0], [5, 6, 7]]))
            sink.complete_packed([held[2][0].request_id], np.array([9, 5, 6, 7], dtype=np.int32),  # type: ignore[attr-defined]
                                 np.array([1]), np.array([3]))
            sink.complete_batch([(r.request_id, [5, 2]) for r, _ in held[3:]])

    replicas = [_Batcher(), _Batcher()]
    dispatcher = DispatchBackend(replicas)
    sink = _Sink()
    dispatcher.start(sink)
    dispatcher.submit(_requests(range(0, 6)))
    for replica in replicas:
        replica.answer_all()
    assert sorted(sink.completed) == list(range(6))
    assert dispatcher.in_flight == [0, 0] and dispatcher.completed == [3, 3]
    assert dispatcher.tokens == [2 + 3 + 3, 2 + 3 + 3]  # rows count up to their first EOS, packed ones whole


def test_the_dispatchers_report_passes_every_replicas_load_through_in_order() -> None:
    replicas = [_Replica(), _Replica()]
    dispatcher = DispatchBackend(replicas)
    dispatcher.start(_Sink())
    dispatcher.submit(_requests(range(3)))
    report = dispatcher.report()
    assert [unit.name for unit in report.load] == [f"unit of {id(r)}" for r in replicas]
    assert [unit.requests for unit in report.load] == [2, 1]
    assert report.sections == {"kind": {"held": True}}  # the same on every replica: kept once
