"""SampleTable: per-sample records in columns, each ticket accepted once."""

from __future__ import annotations

import numpy as np

from harness.sut.records import SampleTable


def test_sample_table_tracks_each_sample_once() -> None:
    table = SampleTable()
    assert table.add([11, 12], [0, 1], issued_ns=100) == range(0, 2)  # tickets are rows
    assert table.add(np.array([13]), np.array([2]), issued_ns=50) == range(2, 3)
    row = table.open_row(1)
    assert row == 1
    table.completed_ns[row] = 300
    table.n_tokens[row] = 4
    assert table.open_row(1) is None and table.open_row(3) is None and table.open_row(-1) is None
    assert table.outstanding() == [0, 2] and table.completed_count() == 1
    assert table.response_id[table.outstanding()].tolist() == [11, 13]
    lines = list(table.as_json({1: 7}))  # replicas by ticket
    assert [line["request_id"] for line in lines] == [13, 11, 12]  # LoadGen's response ids, in issue order
    assert lines[2] == {"qsl_idx": 1, "request_id": 12, "issued_ns": 100, "first_token_ns": None,
                        "completed_ns": 300, "n_tokens": 4, "replica": 7}


def test_sample_table_accepts_each_ticket_once_even_within_one_call_and_grows() -> None:
    table = SampleTable()
    table.add(list(range(5000)), list(range(5000)), issued_ns=7)  # past the first capacity
    assert table.finish([3, 99999, 3, 4, -2], [10, 11, 12, 13, 14], completed_ns=9).tolist() == [0, 3]
    assert table.n_tokens[3] == 10 and table.n_tokens[4] == 13
    assert table.finish([3], [5], completed_ns=10).tolist() == []
    assert table.finish([9, 8, 9, 7], [1, 2, 3, 4], completed_ns=11).tolist() == [0, 1, 3]  # out of order
    assert table.completed_count() == 5 and len(table.outstanding()) == 4995


def test_few_and_many_tickets_are_accepted_the_same_way() -> None:
    """finish() marks up to 8 tickets one by one and more with array operations: same answers either way."""
    import random

    rng = random.Random(5)
    for _ in range(200):
        tickets = [rng.randrange(-2, 40) for _ in range(rng.randrange(1, 20))]
        lengths = [rng.randrange(1, 9) for _ in tickets]
        tables = [SampleTable(), SampleTable()]
        for table in tables:
            table.add(list(range(30)), list(range(30)), issued_ns=1)
            table.finish([5, 6], [1, 1], completed_ns=2)  # already completed
        whole = tables[0].finish(tickets, lengths, completed_ns=3).tolist()
        pieces = []
        for start in range(0, len(tickets), 4):  # the same tickets, at most 4 per call
            pieces += [start + k for k in tables[1].finish(tickets[start:start + 4], lengths[start:start + 4],
                                                             completed_ns=3).tolist()]
        assert whole == pieces, tickets
        assert tables[0].n_tokens.tolist() == tables[1].n_tokens.tolist()
        assert tables[0].completed_ns.tolist() == tables[1].completed_ns.tolist()
