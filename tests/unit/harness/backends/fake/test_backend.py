"""The fake backend's fixed answers: deterministic rows, and answer matrices reused only when nothing holds them."""

from __future__ import annotations

import numpy as np

from harness.backends.fake.backend import FakeBackend, fixed_answer
from harness.backends.fake.options import FakeOptions

EOS = 2


def test_fake_fixed_rows_are_fixed_answers() -> None:
    backend = FakeBackend(FakeOptions(output_tokens=5), max_new_tokens=64)
    rows = backend.fixed_rows([0, 3, 644])
    assert rows.dtype == np.int32
    assert rows.tolist() == [list(fixed_answer(k, 5, EOS)) for k in (0, 3, 644)]


def test_fake_answer_matrix_is_reused_only_when_nothing_holds_it() -> None:
    """The pool behind fixed_rows: a batch's rows stay intact while any view of them lives (a response
    buffer waiting for LoadGen); once it is gone, the next batch reuses the memory."""
    backend = FakeBackend(FakeOptions(output_tokens=5, max_batch_size=4), max_new_tokens=64)
    assert backend.warm_up(10, [4]) == "8 answer matrices of 4 rows ready"
    first = backend.fixed_rows([0, 1, 2])
    waiting = np.ascontiguousarray(first).reshape(-1)  # what the SUT hands to LoadGen
    del first
    rows = [backend.fixed_rows([k]) for k in range(3, 10)]  # every other matrix gets lent out
    extra = backend.fixed_rows([644])  # all eight busy: a new matrix, the waiting buffer untouched
    assert waiting.reshape(3, 5).tolist() == [list(fixed_answer(k, 5, EOS)) for k in (0, 1, 2)]
    assert not any(np.shares_memory(extra, other) for other in [waiting, *rows])
    address = waiting.ctypes.data
    del waiting
    again = backend.fixed_rows([7, 8])
    assert again.ctypes.data == address
    assert again.tolist() == [list(fixed_answer(k, 5, EOS)) for k in (7, 8)]
