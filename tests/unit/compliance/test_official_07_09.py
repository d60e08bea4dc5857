"""TEST07 and TEST09: our verification writes byte for byte what MLCommons' run_verification.py writes.

The official scripts (inference HEAD: compliance/TEST07/run_verification.py, compliance/TEST09/run_verification.py)
are taken from the git mirror into tmp and run in a subprocess on the same logs as ours (a missing mirror is a
skip). TEST07's accuracy script is ``cat FILE``, FILE holding the text our scorer callable returns; its threshold
comes from the audit.config we write (``--audit-config``), or from ``--accuracy-threshold`` on both sides.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from compliance import test07, test09
from compliance.verify import verify_test07_run, verify_test09_run
from harness.benchmarks.registry import benchmark_facts
from tests.unit.compliance.compliance_logs import hexed
from tests.unit.harness.benchmarks.official_script import git_show, inference_mirror

FACTS = benchmark_facts("gpt-oss-120b")
SUMMARY_TEXT = "================================================\nMLPerf Results Summary\n"
DETAIL_TEXT = ':::MLLOG {"key": "warning_generic_message", "value": "Found Audit Config file (audit.config)."}\n'


def _official(tmp_path: Path, test: str) -> Path:
    script = tmp_path / "official" / test / "run_verification.py"
    script.parent.mkdir(parents=True)
    script.write_text(git_show(inference_mirror(), f"HEAD:compliance/{test}/run_verification.py"))
    return script


def _run_dir(tmp_path: Path, name: str, log_text: str) -> Path:
    """A bare compliance log directory: accuracy log, summary and detail (what a run leaves)."""
    run = tmp_path / name
    run.mkdir()
    (run / "mlperf_log_accuracy.json").write_text(log_text)
    (run / "mlperf_log_summary.txt").write_text(SUMMARY_TEXT)
    (run / "mlperf_log_detail.txt").write_text(DETAIL_TEXT)
    return run


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run_official(script: Path, cwd: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(script), *argv], cwd=cwd, capture_output=True, text=True, timeout=120)


SCORER_TEXTS = {
    "pass": "Loading references...\nScored 990 samples\n{'exact_match': 62.15, 'tokens_per_sample': 1234.5}\n",
    "fail": "warning: something on stderr\n{'exact_match': 40.0}\n",
    "equal": "{'exact_match': 60.698}",  # no final newline: the summary starts right after it
    "unparseable": "Traceback (most recent call last):\nValueError: no score\n",
    "crlf": "line one\r\nline two\r{'exact_match':   70.5}\r\n",
    "bad float": "{'exact_match': 1.2.3}\n",
}


@pytest.mark.parametrize("name", sorted(SCORER_TEXTS))
@pytest.mark.parametrize("cli_threshold", [None, 50.0])
def test_test07_verify_accuracy_is_byte_identical(tmp_path: Path, name: str, cli_threshold: float | None) -> None:
    script = _official(tmp_path, "TEST07")
    text = SCORER_TEXTS[name]
    run = _run_dir(tmp_path, "run", "[]\n")
    scorer_file = tmp_path / "scorer.txt"
    scorer_file.write_bytes(text.encode())
    audit = tmp_path / "audit.config"
    audit.write_text(test07.audit_config(FACTS))
    argv = ["-c", str(run), "-o", str(tmp_path / "theirs"), "--accuracy-script", f"cat {scorer_file}",
            "--audit-config", str(audit)]
    argv += ["--accuracy-threshold", str(cli_threshold)] if cli_threshold is not None else []
    _run_official(script, tmp_path / "cwd", argv)
    ours = verify_test07_run(run, lambda log: scorer_file.read_bytes().decode(), cli_threshold,
                             tmp_path / "ours", benchmark="gpt-oss-120b")
    theirs = _tree(tmp_path / "theirs" / "TEST07")
    assert theirs, "the official script wrote nothing"
    assert _tree(ours.output_dir) == theirs
    assert ours.passed == ("TEST PASS" in theirs["verify_accuracy.txt"].decode())


def _entries(lengths: list[int], extra: list[Any] | None = None) -> list[Any]:
    return [{"seq_id": i, "qsl_idx": i, "data": hexed(list(range(n))), "token_count": n}
            for i, n in enumerate(lengths)] + (extra or [])


LOGS: dict[str, str] = {
    "inside": json.dumps(_entries([1278, 1200, 1350, 1300])),
    "below": json.dumps(_entries([100, 1000, 1150])),
    "above": json.dumps(_entries([1500, 1406, 1407])),
    "at the bounds": json.dumps(_entries([1150, 1151, 1150])),  # mean 1150.33 < 1150.38
    "undecodable and missing data": json.dumps(_entries([1300, 1300], [{"qsl_idx": 7, "data": "XYZ"},
                                                                       {"qsl_idx": 8}, {"qsl_idx": 9, "data": ""}])),
    "odd bytes": json.dumps([{"qsl_idx": 0, "data": "0102030405"}, *_entries([1290])]),
    # LoadGen's own layout, cut off before the closing bracket: read line by line
    "truncated": "[\n" + ",\n".join(json.dumps(e) for e in _entries([1200, 1300, 1250])) + ",\n",
    "json lines": "\n".join(json.dumps(e) for e in _entries([1200, 1300])) + "\n",
}


@pytest.mark.parametrize("name", sorted(LOGS))
def test_test09_verify_output_len_is_byte_identical(tmp_path: Path, name: str) -> None:
    script = _official(tmp_path, "TEST09")
    run = _run_dir(tmp_path, "run", LOGS[name])
    audit = tmp_path / "audit.config"
    audit.write_text(test09.audit_config(FACTS))
    done = _run_official(script, tmp_path / "cwd", ["-c", str(run), "-o", str(tmp_path / "theirs"),
                                                    "--audit-config", str(audit)])
    ours = verify_test09_run(run, None, None, tmp_path / "ours", benchmark="gpt-oss-120b")
    theirs = _tree(tmp_path / "theirs" / "TEST09")
    assert theirs, done.stdout[-2000:]
    assert _tree(ours.output_dir) == theirs
    assert done.returncode == (0 if ours.passed else 1)


def test_test09_cli_bounds_override_like_the_official(tmp_path: Path) -> None:
    script = _official(tmp_path, "TEST09")
    run = _run_dir(tmp_path, "run", LOGS["below"])
    _run_official(script, tmp_path / "cwd", ["-c", str(run), "-o", str(tmp_path / "theirs"),
                                             "--min-output-tokens", "100", "--max-output-tokens", "2000"])
    ours = verify_test09_run(run, 100.0, 2000.0, tmp_path / "ours", benchmark="gpt-oss-120b")
    assert ours.passed
    assert _tree(ours.output_dir) == _tree(tmp_path / "theirs" / "TEST09")


@pytest.mark.parametrize("log", ["[]\n", "", "[\n"])
def test_test09_empty_log_writes_nothing_on_both_sides(tmp_path: Path, log: str) -> None:
    from harness.errors import InputError

    script = _official(tmp_path, "TEST09")
    run = _run_dir(tmp_path, "run", log)
    audit = tmp_path / "audit.config"
    audit.write_text(test09.audit_config(FACTS))
    done = _run_official(script, tmp_path / "cwd", ["-c", str(run), "-o", str(tmp_path / "theirs"),
                                                    "--audit-config", str(audit)])
    assert done.returncode == 1 and "No entries" in done.stdout
    assert not (tmp_path / "cwd" / "verify_output_len.txt").exists()
    with pytest.raises(InputError, match="no entries"):
        verify_test09_run(run, None, None, tmp_path / "ours", benchmark="gpt-oss-120b")
    assert not (tmp_path / "ours").exists()


def test_our_audit_configs_read_by_the_official_parsers_give_the_facts(tmp_path: Path) -> None:
    """The thresholds the official scripts read from our audit.config files are the facts' values."""
    from harness.benchmarks.gpt_oss_120b import facts as gpt

    assert test07.threshold_of(test07.audit_config(FACTS)) == gpt.TEST07_THRESHOLD
    assert test09.bounds_in(test09.audit_config(FACTS)) == (gpt.TEST09_LOW, gpt.TEST09_HIGH)
    official07 = git_show(inference_mirror(), "HEAD:compliance/TEST07/gpt-oss-120b/audit.config")
    official09 = git_show(inference_mirror(), "HEAD:compliance/TEST09/gpt-oss-120b/audit.config")
    assert test07.threshold_of(official07) == gpt.TEST07_THRESHOLD
    assert test09.bounds_in(official09) == (gpt.TEST09_LOW, gpt.TEST09_HIGH)
    from compliance.audit import audit_value

    for ours, theirs in ((test07.audit_config(FACTS), official07), (test09.audit_config(FACTS), official09)):
        for key in ("mode", "accuracy_log_rng_seed", "accuracy_log_sampling_target", "min_query_count",
                    "min_duration", "performance_issue_unique", "sample_concatenate_permutation"):
            assert audit_value(ours, key) == audit_value(theirs, key), key
