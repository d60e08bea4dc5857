"""LoadGen log parsing with the checker's semantics, including LoadGen's multi-line string values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import InputError
from harness.logs import parse_accuracy_log, parse_detail_log


def _line(key: str, value: object, error: bool = False) -> str:
    meta = {"is_error": error, "is_warning": False, "file": "x.cc", "line_no": 1, "pid": 1, "tid": 1}
    return ":::MLLOG " + json.dumps({"key": key, "value": value, "time_ms": 1.0, "namespace": "mlperf::logging",
                                     "event_type": "POINT_IN_TIME", "metadata": meta})


def test_first_occurrence_wins_and_errors_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_detail.txt"
    path.write_text("\n".join([_line("result_validity", "VALID"), _line("result_validity", "INVALID"),
                               "garbage line from stdout", _line("error_runtime", "boom", error=True)]) + "\n")
    log = parse_detail_log(path)
    assert log["result_validity"] == "VALID" and log["missing"] is None
    assert log.num_errors() == 1 and log.errors[0].value == "boom"


def test_a_value_with_a_raw_newline_continues_on_the_next_line(tmp_path: Path) -> None:
    """LoadGen 4.0 writes result_invalid_reason with an unescaped newline when a run is INVALID."""
    broken = _line("result_invalid_reason", "Reduce target QPS.PLACEHOLDER").replace("PLACEHOLDER", "")
    head, tail = broken.split("Reduce target QPS.")
    path = tmp_path / "mlperf_log_detail.txt"
    path.write_text(head + "Reduce target QPS.\n Increase min duration." + tail + "\n" + _line("k", 1) + "\n")
    log = parse_detail_log(path)
    assert log["result_invalid_reason"] == "Reduce target QPS.\n Increase min duration."
    assert log["k"] == 1


def test_a_truly_malformed_record_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_detail.txt"
    path.write_text(_line("a", 1) + "\n:::MLLOG {\"key\": oops}\n")
    with pytest.raises(InputError, match=r"mlperf_log_detail.txt:2: malformed"):
        parse_detail_log(path)


def test_truncated_accuracy_log_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_accuracy.json"
    path.write_text('[\n{"seq_id": 0, "qsl_idx": 1, "data": "0100"')
    with pytest.raises(InputError, match="truncated"):
        parse_accuracy_log(path)
