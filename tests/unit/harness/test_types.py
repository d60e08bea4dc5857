"""Value types: a RequestBatch reads like the GenerationRequests it stands for."""

from __future__ import annotations

from harness.types import GenerationRequest, RequestBatch, Sample


def _samples(n: int) -> list[Sample]:
    return [Sample(i, tuple(range(10, 13 + i % 7))) for i in range(n)]


def test_request_batch_reads_like_the_requests_it_stands_for() -> None:
    samples = _samples(6)
    batch = RequestBatch([7, 8, 9], [5, 0, 2], samples, want_first_token=True)
    eager = [GenerationRequest(rid, idx, samples[idx].input_ids, True) for rid, idx in [(7, 5), (8, 0), (9, 2)]]
    assert list(batch) == eager and len(batch) == 3
    tail = batch[1:]
    assert isinstance(tail, RequestBatch) and list(tail) == eager[1:]
