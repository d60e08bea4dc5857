"""`compliance` CLI: verify's exit codes, the four lines on stdout, failing samples and causes on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compliance.cli import main
from tests.unit.compliance.compliance_logs import entry


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return int(exit_.value.code or 0)


def _log_dir(tmp_path: Path, log: object) -> Path:
    directory = tmp_path / "run"
    directory.mkdir()
    (directory / "mlperf_log_accuracy.json").write_text(json.dumps(log))
    return directory


def test_passing_log_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _log_dir(tmp_path, [entry(0, [5, 6, 2], first=[5])])
    assert _run(["verify", "TEST06", str(run), "--scenario", "Server"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == ["First token check pass: True", "EOS check pass: True", "Sample length check pass: True",
                   "TEST06 verification complete"]


def test_failing_log_names_samples_and_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _log_dir(tmp_path, [entry(0, [5, 6, 2]), entry(42, [5, 6, 2, 2])])
    assert _run(["verify", "TEST06", str(run), "--scenario", "Offline"]) == 1
    captured = capsys.readouterr()
    assert "EOS check pass: False" in captured.out
    assert "qsl_idx 42" in captured.err and "likely cause" in captured.err and "trim" in captured.err
    error = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "EOS check pass: False" in error[0]
    assert "Traceback" not in captured.err


def test_bad_input_is_one_error_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _log_dir(tmp_path, [entry(0, [5, 2])])
    assert _run(["verify", "TEST06", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "hint: pass --scenario" in err and "Traceback" not in err
    assert _run(["verify", "TEST06", str(tmp_path / "missing"), "--scenario", "Offline"]) == 2


def test_unknown_test_name_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(["verify", "TEST01", str(tmp_path)]) == 2
    assert "audit test 'TEST01' is not supported" in capsys.readouterr().err


def test_dtype_and_eos_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _log_dir(tmp_path, [entry(0, [5, 0, 0], dtype="int64")])
    assert _run(["verify", "TEST06", str(run), "--scenario", "Offline", "--dtype", "int64"]) == 0
    assert _run(["verify", "TEST06", str(run), "--scenario", "Offline", "--dtype", "int64",
                 "--eos-token-id", "0"]) == 1
    assert "EOS check pass: False" in capsys.readouterr().out
