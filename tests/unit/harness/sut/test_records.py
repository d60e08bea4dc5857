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
