"""compliance.verify: settings from the run manifest, TEST06/ outputs, overwrite policy, manifest record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from compliance.verify import Overrides, resolve_settings, verify_run
from harness.artifacts import Manifest, RunArtifacts
from harness.errors import ConfigError, InputError
from harness.types import RunStatus
from tests.unit.compliance.compliance_logs import entry

AUDIT_LINE = (':::MLLOG {"key": "warning_generic_message", "value": "Found Audit Config file (audit.config). '
              'Overriding TestSettings from audit.config file.", "metadata": {"is_error": false, "is_warning": true}}')


def make_run(root: Path, log: list[dict[str, Any]], audit: bool = True, **fields: Any) -> Path:
    """A run directory as `harness run` leaves it: manifest, detail log, accuracy log."""
    values = {"round": "v4.0", "benchmark": "llama2-70b-99", "scenario": "Server", "mode": "performance",
              "compliance_test": "TEST06", "backend": "fake", "status": RunStatus.COMPLETED, "eos_token_id": 2}
    root.mkdir(parents=True)
    RunArtifacts(root).write_manifest(Manifest(**(values | fields)))
    (root / "mlperf_log_detail.txt").write_text((AUDIT_LINE + "\n") if audit else "")
    (root / "mlperf_log_accuracy.json").write_text(json.dumps(log))
    return root


def test_settings_come_from_the_manifest(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [], scenario="Offline", response_dtype="int64", eos_token_id=0)
    settings, warnings = resolve_settings(run, Overrides())
    assert (settings.scenario, settings.dtype, settings.eos_token_id) == ("Offline", "int64", 0)
    assert warnings == []


def test_overrides_win_and_are_reported(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [])
    settings, warnings = resolve_settings(run, Overrides("Offline", "int16", 7))
    assert (settings.scenario, settings.dtype, settings.eos_token_id) == ("Offline", "int16", 7)
    assert any("overrides the run's Server" in w for w in warnings)
    assert any("int16 overrides" in w for w in warnings)


def test_manifest_without_eos_falls_back_to_llama2(tmp_path: Path) -> None:
    settings, _ = resolve_settings(make_run(tmp_path / "r", [], eos_token_id=None), Overrides())
    assert settings.eos_token_id == 2


def test_suspicious_runs_are_warned_about(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [], audit=False, compliance_test=None, status=RunStatus.FAILED)
    _, warnings = resolve_settings(run, Overrides())
    text = " | ".join(warnings)
    assert "does not record a TEST06" in text and "status is failed" in text
    assert "not show that LoadGen read audit.config" in text


def test_bare_directory_needs_a_scenario(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "mlperf_log_accuracy.json").write_text(json.dumps([entry(0, [5, 2])]))
    with pytest.raises(ConfigError, match="scenario is unknown"):
        verify_run(bare)
    verification = verify_run(bare, Overrides(scenario="Offline"))
    assert verification.result.settings == "scenario=Offline dtype=int32 eos=2"
    assert (bare / "TEST06" / "verify_accuracy.txt").read_text().startswith("First token check pass: Skipped\n")


@pytest.mark.parametrize("overrides", [Overrides(scenario="Nightly"), Overrides(dtype="float64")])
def test_bad_overrides_are_config_errors(tmp_path: Path, overrides: Overrides) -> None:
    with pytest.raises(ConfigError, match="expected one of"):
        resolve_settings(make_run(tmp_path / "r", []), overrides)


def test_manifest_with_unknown_dtype(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="response_dtype 'bfloat16'"):
        resolve_settings(make_run(tmp_path / "r", [], response_dtype="bfloat16"), Overrides())


def test_outputs_land_where_the_packager_reads_them(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [entry(0, [5, 6, 2, 2], first=[5]), entry(1, [5, 2], first=[5])])
    verification = verify_run(run)
    assert not verification.result.passed
    assert (run / "TEST06" / "verify_accuracy.txt").read_text() == (
        "First token check pass: True\nEOS check pass: False\nSample length check pass: True\n"
        "TEST06 verification failed\n")
    copied = run / "TEST06" / "accuracy" / "mlperf_log_accuracy.json"
    assert copied.read_bytes() == (run / "mlperf_log_accuracy.json").read_bytes()
    manifest = RunArtifacts(run).read_manifest()
    assert manifest.details["test06"]["passed"] is False
    assert manifest.details["test06"]["lines"][1] == "EOS check pass: False"
    assert "TEST06/verify_accuracy.txt" in manifest.files
    assert not [p.name for p in (run / "TEST06").rglob(".*")]  # no temporary files left behind


def test_reverify_same_log_but_never_replace_another_logs_result(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [entry(0, [5, 2], first=[5])])
    out = tmp_path / "out"
    verify_run(run, output_dir=out)
    verify_run(run, Overrides(eos_token_id=5), output_dir=out)  # same log: re-verification is fine
    other = make_run(tmp_path / "r2", [entry(0, [5, 2, 2], first=[5])])
    with pytest.raises(ConfigError, match="different accuracy log"):
        verify_run(other, output_dir=out)
    assert (out / "TEST06" / "verify_accuracy.txt").read_text().splitlines()[1] == "EOS check pass: True"
    verify_run(other, output_dir=out, overwrite=True)
    assert (out / "TEST06" / "verify_accuracy.txt").read_text().splitlines()[1] == "EOS check pass: False"
    assert "test06" not in RunArtifacts(other).read_manifest().details  # output elsewhere: manifest untouched


def test_verify_file_without_log_is_not_replaced(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [entry(0, [5, 2], first=[5])])
    (run / "TEST06").mkdir()
    (run / "TEST06" / "verify_accuracy.txt").write_text("someone's notes\n")
    with pytest.raises(ConfigError, match="exists without its accuracy log"):
        verify_run(run)
    assert (run / "TEST06" / "verify_accuracy.txt").read_text() == "someone's notes\n"


def test_crashing_log_writes_nothing(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", [{"seq_id": 0, "qsl_idx": 0, "data": "0500000002000000"}])
    with pytest.raises(InputError, match="no token_count field"):
        verify_run(run)
    assert not (run / "TEST06").exists()


def test_missing_run_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a directory"):
        verify_run(tmp_path / "nowhere")


def test_audit_detection_survives_multiline_loadgen_values(tmp_path: Path) -> None:
    """LoadGen writes result_invalid_reason with a raw newline; the audit check must still read the log."""
    run = make_run(tmp_path / "r", [])
    broken = ':::MLLOG {"key": "result_invalid_reason", "value": "TTFT constrain not met: Reduce target QPS.\n'
    (run / "mlperf_log_detail.txt").write_text(AUDIT_LINE + "\n" + broken + ' ", "metadata": {}}\n')
    _, warnings = resolve_settings(run, Overrides())
    assert warnings == []
