"""LoadGenCompleter: calls reach LoadGen in the order they were made, all of them: through its delivery thread
(Offline) or at once in the caller's thread (direct, Server and Interactive).

Recording callables stand in for lg.FirstTokenComplete / lg.QuerySamplesComplete (which need a running
LoadGen test); the real calls go through the same `send` in tests/integration (real LoadGen runs).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from harness.loadgen import LoadGenCompleter


def test_calls_are_delivered_in_order_and_close_waits_for_them() -> None:
    completer = LoadGenCompleter()
    seen: list[tuple[str, list[int]]] = []
    gate = threading.Event()
    threads: set[str] = set()

    def first(responses: list[int]) -> None:
        gate.wait(5)  # the caller runs on while this call is in LoadGen
        seen.append(("first", responses))
        threads.add(threading.current_thread().name)

    def done(responses: list[int]) -> None:
        seen.append(("done", responses))
        threads.add(threading.current_thread().name)

    completer.send(first, [1, 2], None)
    completer.send(done, [1], None)
    completer.send(done, [2], None)
    assert seen == []  # nothing delivered yet: the first call is still running
    gate.set()
    completer.close()
    assert seen == [("first", [1, 2]), ("done", [1]), ("done", [2])]
    assert threads == {"loadgen-completions"}  # one thread makes every call
    completer.close()  # idempotent


def test_direct_calls_are_made_at_once_in_the_callers_thread_one_at_a_time() -> None:
    completer = LoadGenCompleter(direct=True)
    made: list[tuple[str, list[int]]] = []
    inside = threading.Event()
    release = threading.Event()

    def record(responses: list[int]) -> None:
        made.append((threading.current_thread().name, responses))
        if responses == [1]:
            inside.set()
            release.wait(5)

    first = threading.Thread(target=completer.send, args=(record, [1], None), name="reader")
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=completer.send, args=(record, [2], None), name="abort")
    second.start()
    second.join(0.2)
    assert second.is_alive() and made == [("reader", [1])]  # waits: calls never overlap
    release.set()
    first.join(5)
    second.join(5)
    assert made == [("reader", [1]), ("abort", [2])]
    completer.send(record, [3], None)
    assert made[-1] == (threading.current_thread().name, [3])  # made before send returned
    completer.close()


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


def _settings_logged(run_dir: Path) -> list[str]:
    text = (run_dir / "mlperf_log_detail.txt").read_text()
    return sorted(re.findall(r'"key": "(?:effective|requested)_[a-z_0-9]+", "value": [^,]*', text))


def test_several_tests_in_one_process_get_the_rounds_settings_and_no_conf_error(tmp_path: Path) -> None:
    """LoadGen >= 5.0 logs "Multiple conf files are used" (and skips its mlperf.conf) on a second FromConfig in a
    process; every test after the first must still get exactly the first one's settings and no error."""
    from harness import runner
    from harness.config import load_config

    results = []
    for name in ("first", "second", "third"):
        outcome = runner.run(load_config(None, ["backend.kind=fake", "backend.output_tokens=8", "scenario=Server",
                                                "loadgen.target_qps=20", f"output_dir={tmp_path / name}"]),
                             progress=False)
        assert outcome is not None
        results.append(outcome.manifest.result)
    assert [r.loadgen_errors for r in results] == [0, 0, 0]
    assert all(r.requested_use_token_latencies for r in results)  # from the built-in mlperf.conf
    assert _settings_logged(tmp_path / "first") == _settings_logged(tmp_path / "second") == _settings_logged(
        tmp_path / "third")
