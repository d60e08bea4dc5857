"""SUT token-reporting rules with the fake backend and a recording completer (stands in for LoadGen)."""

from __future__ import annotations

import pytest

from harness.backends.fake.backend import FakeBackend
from harness.backends.fake.options import FakeOptions
from harness.sut.base import build_response
from harness.sut.offline import OfflineSut
from harness.sut.server import ServerSut
from harness.types import Sample
from tests.unit.harness.sut.stubs import StubBackend, issue

EOS = 2


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ([5, 6, 7, EOS, EOS, EOS], [5, 6, 7, EOS]),  # padding after EOS is dropped, one EOS kept
        ([5, 6, 7], [5, 6, 7]),  # max_new_tokens reached: no EOS
        ([5], [5, EOS]),  # n_tokens must be >= 2
        ([EOS], [EOS, EOS]),
        ([], [EOS, EOS]),
        ([EOS, 9, 9], [EOS, EOS]),
    ],
)
def test_build_response(generated: list[int], expected: list[int]) -> None:
    assert build_response(generated, EOS) == expected


def _samples(n: int) -> list[Sample]:
    return [Sample(i, tuple(range(10, 10 + 3 + i))) for i in range(n)]


def _backend(**options: object) -> FakeBackend:
    return FakeBackend(FakeOptions(**options), max_new_tokens=64)  # type: ignore[arg-type]


def test_server_reports_first_token_before_completion_and_buffer_starts_with_it(completer) -> None:  # type: ignore[no-untyped-def]
    backend = _backend(output_tokens=6)
    sut = ServerSut(_samples(4), backend, completer, EOS, streams_first_token=True)
    sut.start_backend()
    completer.expected = 4
    for response_id in range(100, 104):
        issue(sut, [(response_id, response_id - 100)])
    assert completer.done.wait(10)
    backend.stop()
    for response_id in range(100, 104):
        events = [e for e in completer.events if e[1] == response_id]
        assert [e[0] for e in events] == ["first", "complete"]
        first, final = events[0][2], events[1][2]
        assert final[0] == first[0] and final[-1] == EOS and final.count(EOS) == 1 and len(final) == 6


def test_offline_sends_no_first_tokens_and_sorts_longest_prompt_first(completer) -> None:  # type: ignore[no-untyped-def]
    backend = _backend(behaviour="echo")
    sut = OfflineSut(_samples(5), backend, completer, EOS, streams_first_token=False)
    sut.start_backend()
    completer.expected = 5
    issue(sut, [(i, i) for i in range(5)])
    assert completer.done.wait(10)
    backend.stop()
    assert all(kind == "complete" for kind, _, _ in completer.events)
    assert [rid for _, rid, _ in completer.events] == [4, 3, 2, 1, 0]
    assert completer.events[0][2] == [*list(range(10, 17)), EOS]


def test_a_backend_that_streams_no_first_token_still_gets_one_reported_first(completer) -> None:  # type: ignore[no-untyped-def]
    class Silent(StubBackend):
        def submit(self, requests):  # type: ignore[no-untyped-def]
            for request in requests:
                self.sink.complete_batch([(request.request_id, [7, 8, EOS, EOS])])

    sut = ServerSut(_samples(1), Silent(), completer, EOS, streams_first_token=True)  # type: ignore[arg-type]
    sut.start_backend()
    completer.expected = 1
    issue(sut, [(1, 0)])
    assert completer.events == [("first", 1, [7]), ("complete", 1, [7, 8, EOS])]


def test_first_token_mismatch_is_counted(completer) -> None:  # type: ignore[no-untyped-def]
    class Liar(StubBackend):
        def submit(self, requests):  # type: ignore[no-untyped-def]
            for request in requests:
                self.sink.first_tokens([(request.request_id, 99)])
                self.sink.complete_batch([(request.request_id, [7, 8, EOS])])

    sut = ServerSut(_samples(1), Liar(), completer, EOS, streams_first_token=True)  # type: ignore[arg-type]
    sut.start_backend()
    completer.expected = 1
    issue(sut, [(1, 0)])
    assert sut.stats.first_token_mismatches == 1


def test_abort_answers_outstanding_and_later_samples_at_once(completer) -> None:  # type: ignore[no-untyped-def]
    class Stuck(StubBackend):
        def submit(self, requests) -> None:  # type: ignore[no-untyped-def]
            return None  # never answers

    backend = Stuck()
    sut = ServerSut(_samples(3), backend, completer, EOS, streams_first_token=True)  # type: ignore[arg-type]
    sut.start_backend()
    issue(sut, [(1, 0), (2, 1)])
    assert completer.events == []
    sut.abort()
    issue(sut, [(3, 2)])
    assert backend.cancelled
    assert sorted(rid for kind, rid, _ in completer.events if kind == "complete") == [1, 2, 3]
    assert all(len(tokens) >= 2 for kind, _, tokens in completer.events if kind == "complete")


def test_backend_failure_is_recorded_and_loadgen_still_answered(completer) -> None:  # type: ignore[no-untyped-def]
    class Broken(StubBackend):
        def submit(self, requests) -> None:  # type: ignore[no-untyped-def]
            for request in requests:
                self.sink.fail(request.request_id, RuntimeError("CUDA out of memory"))

    sut = OfflineSut(_samples(2), Broken(), completer, EOS, streams_first_token=False)  # type: ignore[arg-type]
    sut.start_backend()
    issue(sut, [(1, 0), (2, 1)])
    assert len(sut.stats.failures) == 2 and "CUDA out of memory" in sut.stats.failures[0]
    assert [kind for kind, _, _ in completer.events] == ["complete", "complete"]
