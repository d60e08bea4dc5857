"""Test sinks that handle one request at a time: the batch calls of TokenSink mapped onto per-request methods."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.backends.base import Completion, packed_completions, response_lengths


class PerRequestSink:
    """TokenSink whose batch calls forward, in order, to `first_token` and `complete` (subclasses implement).

    Rows of a token matrix are cut after their first `eos_token_id` (as the SUT does) when it is set.
    """

    eos_token_id: int | None = None

    def first_token(self, request_id: int, token_id: int) -> None:
        raise NotImplementedError

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        raise NotImplementedError

    def fail(self, request_id: int, error: BaseException) -> None:
        raise NotImplementedError

    def first_tokens(self, firsts: Sequence[tuple[int, int]]) -> None:
        for request_id, token_id in firsts:
            self.first_token(request_id, token_id)

    def complete_batch(self, completions: Sequence[Completion]) -> None:
        for request_id, token_ids in completions:
            self.complete(request_id, token_ids)

    def complete_rows(self, request_ids: Sequence[int], rows: np.ndarray) -> None:
        lists = np.asarray(rows).tolist()
        if self.eos_token_id is not None:
            lengths = response_lengths(np.asarray(rows), self.eos_token_id)
            lists = [row[:length] for row, length in zip(lists, lengths.tolist(), strict=True)]
        self.complete_batch(list(zip(request_ids, lists, strict=True)))

    def complete_packed(self, request_ids: Sequence[int], buffer: np.ndarray, offsets: np.ndarray,
                        lengths: np.ndarray) -> None:
        self.complete_batch(packed_completions(request_ids, buffer, offsets, lengths))
