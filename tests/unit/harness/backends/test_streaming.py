"""StreamRelay: exactly one first token (when wanted) before exactly one completion or failure."""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

from harness.backends.streaming import StreamRelay
from tests.unit.harness.backends.sinks import PerRequestSink


class _Sink(PerRequestSink):
    def __init__(self) -> None:
        self.events: list[tuple[str, int, object]] = []

    def first_token(self, request_id: int, token_id: int) -> None:
        self.events.append(("first", request_id, token_id))

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self.events.append(("complete", request_id, list(token_ids)))

    def fail(self, request_id: int, error: BaseException) -> None:
        self.events.append(("fail", request_id, str(error)))


def test_cumulative_updates_forward_the_first_token_once_then_complete() -> None:
    sink = _Sink()
    relay = StreamRelay(sink)
    relay.open(1, want_first_token=True)
    relay.update_cumulative(1, [])
    relay.update_cumulative(1, [5])
    relay.update_cumulative(1, [5, 6, 7])
    relay.finish(1)
    relay.finish(1)  # a second finish is ignored
    assert sink.events == [("first", 1, 5), ("complete", 1, [5, 6, 7])]


def test_finish_with_final_tokens_sends_the_missing_first_token_first() -> None:
    sink = _Sink()
    relay = StreamRelay(sink)
    relay.open(3, want_first_token=True)
    relay.finish(3, [9, 2])
    assert sink.events == [("first", 3, 9), ("complete", 3, [9, 2])]


def test_offline_requests_get_no_first_token_and_unknown_ids_are_ignored() -> None:
    sink = _Sink()
    relay = StreamRelay(sink)
    relay.open(1, want_first_token=False)
    relay.extend(1, [4, 5])
    relay.extend(42, [1])
    relay.finish(1)
    assert sink.events == [("complete", 1, [4, 5])]


def test_fail_all_fails_every_open_request_once() -> None:
    sink = _Sink()
    relay = StreamRelay(sink)
    for request_id in (1, 2):
        relay.open(request_id, want_first_token=True)
    relay.extend(1, [8])
    relay.fail_all(RuntimeError("backend died"))
    relay.finish(2)
    assert sink.events == [("first", 1, 8), ("fail", 1, "backend died"), ("fail", 2, "backend died")]
    assert relay.open_count == 0


class _BatchSink(_Sink):
    """Records the batch calls themselves (one per LoadGen call behind the SUT)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[int]]] = []
        self.raw: list[Sequence[int]] = []  # the token sequences exactly as the sink received them

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        self.calls.append(("first_tokens", [rid for rid, _ in firsts]))
        super().first_tokens(firsts)

    def complete_batch(self, completions: Sequence[tuple[int, Sequence[int]]]) -> None:
        self.calls.append(("complete_batch", [rid for rid, _ in completions]))
        self.raw.extend(tokens for _, tokens in completions)
        super().complete_batch(completions)


def test_a_batch_step_reaches_the_sink_as_one_call_each_with_the_same_events() -> None:
    sink = _BatchSink()
    relay = StreamRelay(sink)
    for rid, wants in ((1, True), (2, True), (3, False)):
        relay.open(rid, want_first_token=wants)
    relay.extend_each([(1, [5]), (2, [6]), (3, [7]), (99, [8])])  # 99 was never opened
    relay.finish_each([(1, [5, 9]), (2, None), (3, [7, 2]), (1, [0])])  # 1 twice: the second is ignored
    assert sink.calls == [("first_tokens", [1, 2]), ("complete_batch", [1, 2, 3])]
    assert sink.events == [("first", 1, 5), ("first", 2, 6), ("complete", 1, [5, 9]), ("complete", 2, [6]),
                           ("complete", 3, [7, 2])]


def test_an_int32_array_reaches_the_sink_as_it_is_other_finals_as_lists_of_ints() -> None:
    sink = _BatchSink()
    relay = StreamRelay(sink)
    for rid in (1, 2, 3):
        relay.open(rid, want_first_token=True)
    final = array("i", [4, 5, 2])
    relay.finish_each([(1, final), (2, np.array([6, 7], dtype=np.int64)), (3, array("q", [8]))])
    assert sink.raw[0] is final
    assert [type(t) for t in sink.raw[1]] == [int, int] and sink.raw[1] == [6, 7] and sink.raw[2] == [8]
    assert sink.events[:3] == [("first", 1, 4), ("first", 2, 6), ("first", 3, 8)]
