"""Per-sample timings of one LoadGen test, in columns: issue, first token, completion, n_tokens.

Columns (int64 numpy arrays, grown by doubling) rather than one object per sample: the Offline path
records 24,576 samples inside LoadGen's timed window, and a finished batch is marked with a few array
operations. Not thread-safe on its own; the SUT calls it under its lock. A time of 0 means "not yet"
(monotonic_ns is never 0 in practice).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

COLUMNS = ("request_id", "qsl_idx", "issued_ns", "first_token_ns", "completed_ns", "n_tokens")


class SampleTable:
    """One row per issued sample, found by its LoadGen response id."""

    def __init__(self) -> None:
        self._row: dict[int, int] = {}
        self._size = 0
        self.request_id = self.qsl_idx = self.issued_ns = np.zeros(0, dtype=np.int64)
        self.first_token_ns = self.completed_ns = self.n_tokens = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self._size

    def _reserve(self, count: int) -> None:
        needed = self._size + count
        if needed <= len(self.request_id):
            return
        capacity = max(needed, 2 * len(self.request_id), 1024)
        for name in COLUMNS:
            grown = np.zeros(capacity, dtype=np.int64)
            grown[: self._size] = getattr(self, name)[: self._size]
            setattr(self, name, grown)

    def add(self, request_ids: Sequence[int], sample_indices: Sequence[int], issued_ns: int) -> None:
        """Record issued samples (one issue time for the whole call)."""
        count = len(request_ids)
        self._reserve(count)
        start, stop = self._size, self._size + count
        self._row.update(zip(request_ids, range(start, stop), strict=True))
        self.request_id[start:stop] = request_ids
        self.qsl_idx[start:stop] = sample_indices
        self.issued_ns[start:stop] = issued_ns
        self._size = stop

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

        Unknown ids, ids already completed and repeats within the call are skipped: each sample completes
        exactly once.
        """
        rows = np.fromiter(map(self._row.get, request_ids, itertools.repeat(-1)), dtype=np.int64,
                           count=len(request_ids))
        known = rows >= 0
        accept = known.copy()
        accept[known] = self.completed_ns[rows[known]] == 0
        positions = np.flatnonzero(accept)
        chosen = rows[positions]
        if len(set(request_ids)) != len(request_ids):  # the same id twice in one call: keep the first
            _, first = np.unique(chosen, return_index=True)
            positions, chosen = positions[np.sort(first)], chosen[np.sort(first)]
        self.completed_ns[chosen] = completed_ns
        self.n_tokens[chosen] = np.asarray(lengths, dtype=np.int64)[positions]
        return positions.tolist(), chosen.tolist()

    def outstanding(self) -> list[int]:
        """Request ids issued but not completed."""
        open_rows = np.flatnonzero(self.completed_ns[: self._size] == 0)
        return self.request_id[open_rows].tolist()

    def completed_count(self) -> int:
        """How many samples have completed."""
        return int(np.count_nonzero(self.completed_ns[: self._size]))

    def as_json(self, replicas: Mapping[int, int] | None = None) -> Iterator[dict[str, int | None]]:
        """samples.jsonl records in issue order; times not reached are None."""
        replicas = replicas or {}
        size = self._size
        order = np.argsort(self.issued_ns[:size], kind="stable")
        columns = {name: getattr(self, name)[:size][order].tolist() for name in COLUMNS}
        for values in zip(*(columns[name] for name in COLUMNS), strict=True):
            record = dict(zip(COLUMNS, values, strict=True))
            yield {"qsl_idx": record["qsl_idx"], "request_id": record["request_id"],
                   "issued_ns": record["issued_ns"], "first_token_ns": record["first_token_ns"] or None,
                   "completed_ns": record["completed_ns"] or None, "n_tokens": record["n_tokens"],
                   "replica": replicas.get(record["request_id"])}

