"""Batched reporting: one LoadGen call per backend batch, the same responses as one by one.

The recording completer stands in for LoadGen (tests/conftest.py); the fake backend is the real one used
by the overhead benchmark. Real LoadGen runs through the same path in tests/integration.
"""

from __future__ import annotations

import array

import numpy as np
import pytest

from harness.backends.base import packed_response_lengths, response_lengths
from harness.backends.fake.backend import FakeBackend, fixed_answer
from harness.backends.fake.options import FakeOptions
from harness.sut.base import SutCore, build_response
from harness.sut.offline import OfflineSut
from harness.sut.server import ServerSut
from harness.types import GenerationRequest, Sample
from tests.conftest import RecordingCompleter
from tests.unit.harness.sut.stubs import StubBackend, issue

EOS = 2


def _samples(n: int) -> list[Sample]:
    return [Sample(i, tuple(range(10, 13 + i % 7))) for i in range(n)]


class _Idle(StubBackend):
    """A backend that keeps whatever it is given (the test reports for it)."""

    def __init__(self) -> None:
        super().__init__()
        self.submitted: list[list[GenerationRequest]] = []

    def submit(self, requests) -> None:  # type: ignore[no-untyped-def]
        self.submitted.append(list(requests))


def _completes(completer: RecordingCompleter) -> dict[int, list[int]]:
    return {rid: tokens for kind, rid, tokens in completer.events if kind == "complete"}


def test_build_response_keeps_an_int32_array_and_gives_the_list_answer() -> None:
    for generated in ([5, 6, EOS, EOS], [5, 6, 7], [EOS], [5], []):
        as_array = build_response(array.array("i", generated), EOS)
        assert isinstance(as_array, array.array) and as_array.typecode == "i"
        assert list(as_array) == build_response(list(generated), EOS)
    assert build_response(array.array("q", [5, EOS]), EOS) == [5, EOS]  # other widths become lists


def test_response_lengths_stop_at_the_first_eos_or_take_the_whole_row() -> None:
    rows = np.array([[5, 6, EOS, 9], [5, 6, 7, 8], [EOS, EOS, 0, 0], [5, EOS, EOS, EOS]])
    assert response_lengths(rows, EOS).tolist() == [3, 4, 1, 2]


def test_response_lengths_of_a_matrix_larger_than_one_block() -> None:
    """Rows are scanned in blocks; the answer does not depend on where a block ends."""
    rows = np.random.default_rng(0).integers(0, 600, size=(700, 301)).astype(np.int32)
    expected = [row.index(EOS) + 1 if EOS in row else 301 for row in rows.tolist()]
    assert response_lengths(rows, EOS).tolist() == expected
    assert response_lengths(np.zeros((3, 0), dtype=np.int32), EOS).tolist() == [0, 0, 0]


def test_packed_response_lengths_stop_at_each_responses_first_stop_id_inside_it() -> None:
    buffer = np.array([EOS, 5, 6, EOS, 7, 9, 4, 8, EOS, 1, EOS], dtype=np.int32)
    offsets, lengths = np.array([1, 4, 6, 9, 10]), np.array([3, 2, 2, 0, 1])  # the EOS at 0 and 8 belong to none
    assert packed_response_lengths(buffer, offsets, lengths, EOS).tolist() == [3, 2, 2, 0, 1]
    assert packed_response_lengths(buffer, offsets, lengths, EOS, (4,)).tolist() == [3, 2, 1, 0, 1]
    assert packed_response_lengths(buffer[:0], offsets[:0], lengths[:0], EOS).tolist() == []
    rng = np.random.default_rng(3)
    rows = rng.integers(0, 40, size=(500, 33)).astype(np.int32)
    assert packed_response_lengths(rows.reshape(-1), np.arange(500) * 33, np.full(500, 33), EOS, (7,)).tolist() == \
        response_lengths(rows, EOS, (7,)).tolist()


def test_rows_give_the_same_responses_as_lists_in_one_loadgen_call(completer: RecordingCompleter) -> None:
    rows = np.array([[5, 6, EOS, 9, 9], [7, 8, 9, 10, 11], [EOS, 0, 0, 0, 0], [6, EOS, 0, 0, 0]], dtype=np.int64)
    by_rows = SutCore(_samples(4), _Idle(), completer, EOS, streams_first_token=False)  # type: ignore[arg-type]
    tickets = by_rows.make_requests([10 + k for k in range(4)], list(range(4))).request_ids
    by_rows.complete_rows(tickets, rows)
    by_lists = SutCore(_samples(4), _Idle(), RecordingCompleter(), EOS, False)  # type: ignore[arg-type]
    tickets = by_lists.make_requests([10 + k for k in range(4)], list(range(4))).request_ids
    by_lists.complete_batch([(tickets[k], rows[k].tolist()) for k in range(4)])
    assert _completes(completer) == _completes(by_lists.completer) == {  # type: ignore[attr-defined]
        10: [5, 6, EOS], 11: [7, 8, 9, 10, 11], 12: [EOS, EOS], 13: [6, EOS]}
    assert by_rows.stats.padded_short == by_lists.stats.padded_short == 1
    assert by_rows.stats.tokens == by_lists.stats.tokens == 12
    # the short row takes the padding path, the others go together: two buffers, no per-sample calls
    assert completer.calls == [("complete_buffer", 1), ("complete_buffer", 3)]


def test_packed_responses_give_the_same_as_lists_in_one_loadgen_call_with_first_tokens_in_order(
        completer: RecordingCompleter) -> None:
    """Random packed batches (gaps between responses, EOS and another stop id anywhere, empty and one-token answers)
    against complete_batch on the same answers: the same responses, counters and first tokens."""
    rng = np.random.default_rng(7)
    for trial in range(40):
        count = int(rng.integers(1, 9))
        answers = [rng.integers(0, 6, size=int(rng.integers(0, 7))).tolist() for _ in range(count)]
        pieces, offsets = [], []
        for answer in answers:
            pieces += rng.integers(0, 6, size=int(rng.integers(0, 3))).tolist()  # bytes no response owns
            offsets.append(len(pieces))
            pieces += answer
        buffer = np.array(pieces, dtype=np.int32)
        stops = (4,) if trial % 2 else ()
        suts = [ServerSut(_samples(count), _Idle(), RecordingCompleter(), EOS, streams_first_token=True,
                          stop_token_ids=stops) for _ in range(2)]  # type: ignore[arg-type]
        for sut in suts:
            for k in range(count):
                issue(sut, [(100 + k, k)])
        suts[0].first_tokens([(0, 5)])
        suts[1].first_tokens([(0, 5)])
        suts[0].complete_packed(list(range(count)), buffer, np.array(offsets, dtype=np.int64),
                                np.array([len(a) for a in answers], dtype=np.int64))
        suts[1].complete_batch([(k, answers[k]) for k in range(count)])
        packed, lists = (sut.completer for sut in suts)
        assert sorted(packed.events) == sorted(lists.events), trial  # type: ignore[attr-defined]
        order = {(kind, rid): at for at, (kind, rid, _) in enumerate(packed.events)}  # type: ignore[attr-defined]
        assert all(order[("first", rid)] < at for (kind, rid), at in order.items() if kind == "complete")
        short = sum(len(a) < 2 or a[0] in (EOS, *stops) for a in answers)  # padded: the per-response path
        assert [call for call in packed.calls if call[0] == "complete_buffer"] == (  # type: ignore[attr-defined]
            [("complete_buffer", short)] * bool(short) + [("complete_buffer", count - short)] * bool(count - short))
        for name in ("completed", "tokens", "padded_short", "first_token_mismatches"):
            assert getattr(suts[0].stats, name) == getattr(suts[1].stats, name), (trial, name)


def test_rows_of_the_wrong_shape_are_refused(completer: RecordingCompleter) -> None:
    sut = SutCore(_samples(2), _Idle(), completer, EOS, streams_first_token=False)  # type: ignore[arg-type]
    tickets = sut.make_requests([1, 2], [0, 1]).request_ids
    with pytest.raises(ValueError, match="expected \\(2, width\\)"):
        sut.complete_rows(tickets, np.zeros(6, dtype=np.int32))


def test_duplicates_and_unknown_ids_are_dropped_from_a_batch(completer: RecordingCompleter) -> None:
    sut = SutCore(_samples(3), _Idle(), completer, EOS, streams_first_token=False)  # type: ignore[arg-type]
    first, second = sut.make_requests([1, 2], [0, 1]).request_ids
    sut.complete_batch([(first, [5, EOS])])
    sut.complete_rows([first, second, 99, -1], np.array([[6, EOS], [7, EOS], [8, EOS], [9, EOS]]))
    sut.complete_rows([second], np.array([[4, EOS]]))
    assert [(kind, rid, tokens) for kind, rid, tokens in completer.events] == [
        ("complete", 1, [5, EOS]), ("complete", 2, [7, EOS])]
    assert sut.stats.completed == 2 and completer.calls == [("complete_buffer", 1), ("complete_buffer", 1)]


def test_server_batch_sends_missing_first_tokens_first_in_one_call(completer: RecordingCompleter) -> None:
    backend = _Idle()
    sut = ServerSut(_samples(3), backend, completer, EOS, streams_first_token=True)  # type: ignore[arg-type]
    for rid in (1, 2, 3):
        issue(sut, [(rid, rid - 1)])
    tickets = [batch[0].request_id for batch in backend.submitted]
    sut.first_tokens([(tickets[0], 5)])
    sut.complete_rows(tickets, np.array([[5, 6, EOS], [7, 8, EOS], [9, EOS, 0]]))
    assert completer.calls == [("first_tokens", 1), ("first_tokens", 2), ("complete_buffer", 3)]
    assert [e for e in completer.events if e[0] == "first"] == [("first", 1, [5]), ("first", 2, [7]),
                                                                ("first", 3, [9])]
    assert sut.stats.first_token_mismatches == 0


def test_offline_hands_the_sorted_query_over_in_backend_batches(completer: RecordingCompleter) -> None:
    backend = _Idle()
    sut = OfflineSut(_samples(10), backend, completer, EOS, streams_first_token=False,  # type: ignore[arg-type]
                     submit_chunk=4)
    issue(sut, [(100 + k, k) for k in range(10)])
    assert [len(batch) for batch in backend.submitted] == [4, 4, 2]
    lengths = [len(r.input_ids) for batch in backend.submitted for r in batch]
    assert lengths == sorted(lengths, reverse=True)
    assert len(set(sut.records.issued_ns[:10].tolist())) == 1  # one issue time
    tickets = [r.request_id for batch in backend.submitted for r in batch]
    assert sorted(sut.records.response_id[tickets].tolist()) == [100 + k for k in range(10)]


def test_fake_backend_reports_an_offline_query_in_max_batch_size_batches(completer: RecordingCompleter) -> None:
    backend = FakeBackend(FakeOptions(output_tokens=7, max_batch_size=16), max_new_tokens=64)
    sut = OfflineSut(_samples(40), backend, completer, EOS, streams_first_token=False, submit_chunk=16)
    sut.start_backend()
    completer.expected = 40
    issue(sut, [(1000 + k, k) for k in range(40)])
    assert completer.done.wait(10)
    backend.stop()
    assert sorted(n for _, n in completer.calls) == [8, 16, 16]
    for rid, tokens in _completes(completer).items():
        assert tokens == list(fixed_answer(rid - 1000, 7, EOS))
