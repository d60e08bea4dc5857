"""Per-sample timings of one LoadGen test, in columns: issue, first token, completion, n_tokens.

Columns (int64 arrays) rather than one object per sample: the Offline path records 24,576 samples inside
LoadGen's timed window, and the harness must not be what limits a fast system. Not thread-safe on its
own; the SUT calls it under its lock. A time of 0 means "not yet" (monotonic_ns is never 0 in practice).
"""

from __future__ import annotations

import array
from collections.abc import Iterator, Mapping, Sequence


class SampleTable:
    """One row per issued sample, found by its LoadGen response id."""

    def __init__(self) -> None:
        self._row: dict[int, int] = {}
        self.request_id = array.array("q")
        self.qsl_idx = array.array("q")
        self.issued_ns = array.array("q")
        self.first_token_ns = array.array("q")
        self.completed_ns = array.array("q")
        self.n_tokens = array.array("q")

    def __len__(self) -> int:
        return len(self.request_id)

    def add(self, request_ids: Sequence[int], sample_indices: Sequence[int], issued_ns: int) -> None:
        """Record issued samples (one issue time for the whole call)."""
        start, count = len(self.request_id), len(request_ids)
        self._row.update(zip(request_ids, range(start, start + count), strict=True))
        self.request_id.extend(request_ids)
        self.qsl_idx.extend(sample_indices)
        self.issued_ns.extend(array.array("q", [issued_ns]) * count)
        zeros = array.array("q", [0]) * count
        self.first_token_ns.extend(zeros)
        self.completed_ns.extend(zeros)
        self.n_tokens.extend(zeros)

    def row(self, request_id: int) -> int | None:
        """The row of a request id, or None when it was never issued."""
        return self._row.get(request_id)

    def open_row(self, request_id: int) -> int | None:
        """The row of an issued request that has not completed yet, else None."""
        row = self._row.get(request_id)
        return None if row is None or self.completed_ns[row] else row

    def finish(self, request_ids: Sequence[int], lengths: Sequence[int], completed_ns: int
               ) -> tuple[list[int], list[int]]:
        """Mark open requests completed; returns (positions in request_ids, rows) of those accepted.

        Unknown ids and ids already completed are skipped: each sample completes exactly once.
        """
        row_of, completed, n_tokens = self._row.get, self.completed_ns, self.n_tokens
        positions: list[int] = []
        rows: list[int] = []
        for position, request_id in enumerate(request_ids):
            row = row_of(request_id)
            if row is None or completed[row]:
                continue
            completed[row] = completed_ns
            n_tokens[row] = lengths[position]
            positions.append(position)
            rows.append(row)
        return positions, rows

    def outstanding(self) -> list[int]:
        """Request ids issued but not completed."""
        completed = self.completed_ns
        return [rid for rid, row in self._row.items() if not completed[row]]

    def completed_count(self) -> int:
        """How many samples have completed."""
        return sum(1 for t in self.completed_ns if t)

    def as_json(self, replicas: Mapping[int, int] | None = None) -> Iterator[dict[str, int | None]]:
        """samples.jsonl records in issue order; times not reached are None."""
        replicas = replicas or {}
        order = sorted(range(len(self)), key=self.issued_ns.__getitem__)
        for row in order:
            request_id = self.request_id[row]
            yield {"qsl_idx": self.qsl_idx[row], "request_id": request_id, "issued_ns": self.issued_ns[row],
                   "first_token_ns": self.first_token_ns[row] or None,
                   "completed_ns": self.completed_ns[row] or None, "n_tokens": self.n_tokens[row],
                   "replica": replicas.get(request_id)}
