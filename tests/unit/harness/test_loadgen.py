"""LoadGenCompleter's delivery thread: calls reach LoadGen in the order they were made, all of them.

Recording callables stand in for lg.FirstTokenComplete / lg.QuerySamplesComplete (which need a running
LoadGen test); the real calls go through the same `send` in tests/integration (real LoadGen runs).
"""

from __future__ import annotations

import threading

from harness.loadgen import LoadGenCompleter


def test_calls_are_delivered_in_order_and_close_waits_for_them() -> None:
    completer = LoadGenCompleter()
    seen: list[tuple[str, list[int]]] = []
    gate = threading.Event()

    def first(responses: list[int]) -> None:
        gate.wait(5)  # the caller runs on while this call is in LoadGen
        seen.append(("first", responses))

    def done(responses: list[int]) -> None:
        seen.append(("done", responses))

    completer.send(first, [1, 2], None)
    completer.send(done, [1], None)
    completer.send(done, [2], None)
    assert seen == []  # nothing delivered yet: the first call is still running
    gate.set()
    completer.close()
    assert seen == [("first", [1, 2]), ("done", [1]), ("done", [2])]
    completer.close()  # idempotent


def test_a_failing_call_does_not_stop_later_ones(capsys) -> None:  # type: ignore[no-untyped-def]
    completer = LoadGenCompleter()
    seen: list[list[int]] = []

    def broken(responses: list[int]) -> None:
        raise RuntimeError("bad response")

    completer.send(broken, [1], None)
    completer.send(seen.append, [2], None)
    completer.close()
    assert seen == [[2]]
    assert "LoadGen rejected a response batch: bad response" in capsys.readouterr().err
