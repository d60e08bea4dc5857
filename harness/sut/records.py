"""Per-sample timings of one LoadGen test, in columns: issue, first token, completion, n_tokens.

Columns (int64 numpy arrays, grown by doubling) rather than one object per sample: the Offline path
records 24,576 samples inside LoadGen's timed window, and a finished batch is marked with a few array
operations. A sample's row number is the request id the SUT gives the backend ("ticket"), so a
completion finds its row by indexing, with no lookup table; `response_id` maps rows back to LoadGen's
response ids. Not thread-safe on its own; the SUT calls it under its lock. A time of 0 means "not yet"
(monotonic_ns is never 0 in practice).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

_ONE_BY_ONE = 8  # finish() marks at most this many tickets one by one

COLUMNS = ("response_id", "qsl_idx", "issued_ns", "first_token_ns", "completed_ns", "n_tokens")


class SampleTable:
    """One row per issued sample; the row number is the sample's ticket."""

    def __init__(self) -> None:
        self._size = 0
        self.response_id = self.qsl_idx = self.issued_ns = np.zeros(0, dtype=np.int64)
        self.first_token_ns = self.completed_ns = self.n_tokens = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return self._size

    def _reserve(self, count: int) -> None:
        needed = self._size + count
        if needed <= len(self.response_id):
            return
        capacity = max(needed, 2 * len(self.response_id), 1024)
        for name in COLUMNS:
            grown = np.zeros(capacity, dtype=np.int64)
            grown[: self._size] = getattr(self, name)[: self._size]
            setattr(self, name, grown)

    def add(self, response_ids: Sequence[int] | np.ndarray, sample_indices: Sequence[int] | np.ndarray,
            issued_ns: int) -> range:
        """Record issued samples (one issue time for the whole call); returns their tickets."""
        count = len(response_ids)
        self._reserve(count)
        start, stop = self._size, self._size + count
        self.response_id[start:stop] = response_ids
        self.qsl_idx[start:stop] = sample_indices
        self.issued_ns[start:stop] = issued_ns
        self._size = stop
        return range(start, stop)

    def open_row(self, ticket: int) -> int | None:
        """The row of an issued ticket that has not completed yet, else None."""
        if not 0 <= ticket < self._size or self.completed_ns[ticket]:
            return None
        return ticket

    def finish(self, tickets: Sequence[int], lengths: Sequence[int] | np.ndarray, completed_ns: int
               ) -> np.ndarray:
        """Mark open tickets completed; returns the positions (in `tickets`) of those accepted.

        Tickets never issued, already completed, or repeated within the call are skipped: each sample
        completes exactly once. A few tickets are marked one by one (cheaper than a dozen array operations).
        """
        if len(tickets) <= _ONE_BY_ONE:
            return self._finish_each(tickets, lengths, completed_ns)
        rows = np.asarray(tickets, dtype=np.int64)
        known = (rows >= 0) & (rows < self._size)
        accept = known.copy()
        accept[known] = self.completed_ns[rows[known]] == 0
        positions = np.flatnonzero(accept)
        chosen = rows[positions]
        if len(chosen) > 1 and not bool((chosen[1:] > chosen[:-1]).all()):  # maybe repeats: keep the first
            _, first = np.unique(chosen, return_index=True)
            positions = positions[np.sort(first)]
            chosen = rows[positions]
        self.completed_ns[chosen] = completed_ns
        self.n_tokens[chosen] = np.asarray(lengths, dtype=np.int64)[positions]
        return positions

    def _finish_each(self, tickets: Sequence[int], lengths: Sequence[int] | np.ndarray, completed_ns: int
                     ) -> np.ndarray:
        positions: list[int] = []
        done = self.completed_ns
        for position, ticket in enumerate(np.asarray(tickets, dtype=np.int64).tolist()):
            if 0 <= ticket < self._size and not done[ticket]:
                done[ticket] = completed_ns
                self.n_tokens[ticket] = lengths[position]
                positions.append(position)
        return np.array(positions, dtype=np.int64)

    def outstanding(self) -> list[int]:
        """Tickets issued but not completed."""
        return np.flatnonzero(self.completed_ns[: self._size] == 0).tolist()

    def completed_count(self) -> int:
        """How many samples have completed."""
        return int(np.count_nonzero(self.completed_ns[: self._size]))

    def as_json(self, replicas: Mapping[int, int] | None = None) -> Iterator[dict[str, int | None]]:
        """samples.jsonl records in issue order; times not reached are None. `replicas` maps tickets."""
        replicas = replicas or {}
        size = self._size
        order = np.argsort(self.issued_ns[:size], kind="stable")
        columns = {name: getattr(self, name)[:size][order].tolist() for name in COLUMNS}
        for ticket, values in zip(order.tolist(), zip(*(columns[name] for name in COLUMNS), strict=True),
                                  strict=True):
            record = dict(zip(COLUMNS, values, strict=True))
            yield {"qsl_idx": record["qsl_idx"], "request_id": record["response_id"],
                   "issued_ns": record["issued_ns"], "first_token_ns": record["first_token_ns"] or None,
                   "completed_ns": record["completed_ns"] or None, "n_tokens": record["n_tokens"],
                   "replica": replicas.get(ticket)}
