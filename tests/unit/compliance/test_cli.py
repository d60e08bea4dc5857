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


def _manifest_run(tmp_path: Path, benchmark: str, test: str, log: object) -> Path:
    from harness.artifacts import Manifest, RunArtifacts
    from harness.types import RunStatus

    run = _log_dir(tmp_path, log)
    RunArtifacts(run).write_manifest(Manifest(round="v6.1", benchmark=benchmark, scenario="Offline",
                                              mode="performance", compliance_test=test, backend="fake",
                                              status=RunStatus.COMPLETED))
    return run


@pytest.mark.parametrize(("bench", "audit", "hint"), [("gpt-oss-120b", "TEST06", "compliance run TEST07"),
                                                        ("llama2-70b-99.9", "TEST07", "compliance run TEST06"),
                                                        ("llama3.1-8b", "TEST09", "compliance run TEST06")])
def test_a_test_the_benchmark_does_not_have_is_one_error_line_with_the_fix(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], bench: str, audit: str, hint: str) -> None:
    run = _manifest_run(tmp_path, bench, audit, [])
    assert _run(["verify", audit, str(run)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bench} has no {audit}" in err and hint in err and "Traceback" not in err
    assert _run(["run", audit, "--set", f"benchmark={bench}"]) == 2
    assert f"{bench} has no {audit}" in capsys.readouterr().err


def test_verify_test09_exit_codes_and_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _manifest_run(tmp_path, "gpt-oss-120b", "TEST09", [entry(0, list(range(1200))), entry(1, [1] * 1300)])
    assert _run(["verify", "TEST09", str(run)]) == 0
    out = capsys.readouterr().out
    assert "Mean output tokens: 1250.00" in out and out.rstrip().endswith("TEST PASS")
    assert _run(["verify", "TEST09", str(run), "--min-output-tokens", "1260"]) == 1
    captured = capsys.readouterr()
    assert "TEST FAIL" in captured.out and "error: TEST09 failed: mean output tokens 1250.0" in captured.err
    assert (run / "TEST09" / "verify_output_len.txt").read_text().endswith("TEST FAIL\n")


def test_verify_test07_without_a_config_names_what_is_missing(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run = _manifest_run(tmp_path, "gpt-oss-120b", "TEST07", [entry(0, [1, 2])])
    assert _run(["verify", "TEST07", str(run)]) == 2
    assert "config.yaml does not exist" in capsys.readouterr().err
