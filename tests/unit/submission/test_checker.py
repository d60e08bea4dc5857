"""submission.checker: judging the official checker's log (an OK summary alone is not a pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import InputError
from submission.checker import official_command, packaged_scenarios, parse_log

_OK = """[2024-02-23 12:00:00,000 submission_checker.py:3790 INFO] Results=4, NoResults=0, Power Results=0
[2024-02-23 12:00:00,000 submission_checker.py:3791 INFO] Open Results=4, Open Power Results=0
[2024-02-23 12:00:00,000 submission_checker.py:3800 INFO] SUMMARY: submission looks OK
"""


def test_ok_summary_with_the_expected_open_results_passes() -> None:
    assert parse_log(_OK, 0, 4, []).passed


def test_ok_summary_with_fewer_results_fails() -> None:
    verdict = parse_log(_OK.replace("=4", "=0"), 0, 4, [])
    assert not verdict.passed
    assert verdict.checks()[-1].detail.startswith("rc=0, summary OK, Open Results=0 (expected 4)")


def test_a_crash_without_summary_fails_and_errors_are_listed() -> None:
    log = ("[2024-02-23 12:00:00,000 submission_checker.py:100 ERROR] x/y has issues\n"
           "Traceback (most recent call last):\n  File ...\nAttributeError: 'bool' object has no attribute 'lower'\n")
    verdict = parse_log(log, 1, 2, [])
    assert (verdict.passed, verdict.crashed, verdict.summary_ok) == (False, True, False)
    assert verdict.errors == ["x/y has issues"]


def test_command_for_tag_script_and_for_head_module(tmp_path: Path) -> None:
    tag = tmp_path / "tag"
    (tag / "tools/submission").mkdir(parents=True)
    (tag / "tools/submission/submission_checker.py").write_text("")
    command, cwd = official_command(tag, tmp_path, "v4.0", "Org", tmp_path / "s.csv")
    assert command[1:] == [str(tag / "tools/submission/submission_checker.py"), "--input", str(tmp_path.resolve()),
                           "--version", "v4.0", "--submitter", "Org", "--csv", str(tmp_path / "s.csv")]
    assert cwd == tag
    head = tmp_path / "head"
    (head / "tools/submission/submission_checker").mkdir(parents=True)
    (head / "tools/submission/submission_checker/main.py").write_text("")
    command, cwd = official_command(head, tmp_path, "v6.0", "Org", tmp_path / "s.csv")
    assert command[1:3] == ["-m", "submission_checker.main"] and cwd == head / "tools/submission"
    with pytest.raises(InputError, match="not a checkout"):
        official_command(tmp_path, tmp_path, "v4.0", "Org", tmp_path / "s.csv")


def test_packaged_scenarios_counts_result_dirs(tmp_path: Path) -> None:
    for scenario in ("Offline", "Server"):
        (tmp_path / "open/Org/results/sys/llama2-70b-99" / scenario).mkdir(parents=True)
    assert packaged_scenarios(tmp_path) == ("Org", 2)
    (tmp_path / "open/Other").mkdir()
    with pytest.raises(InputError, match="expected exactly one"):
        packaged_scenarios(tmp_path)


def test_error_lines_of_a_passing_verdict_are_warnings_and_of_a_failing_one_failures() -> None:
    error = "[2024-02-23 12:00:00,000 submission_checker.py:100 ERROR] open/X/results/s/b/Offline/accuracy: note\n"
    passing = parse_log(error + _OK, 0, 4, [])
    assert passing.passed and [c.status.value for c in passing.checks()] == ["WARN", "PASS"]
    failing = parse_log(error + _OK, 0, 5, [])
    assert [c.status.value for c in failing.checks()] == ["FAIL", "FAIL"]


def test_a_relative_checkout_path_is_resolved_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """issue 17: `submission check --official RELATIVE_DIR` joined the path twice (rc 2)."""
    (tmp_path / "inference/tools/submission").mkdir(parents=True)
    (tmp_path / "inference/tools/submission/submission_checker.py").write_text("")
    monkeypatch.chdir(tmp_path)
    command, cwd = official_command(Path("inference"), Path("tree"), "v4.0", "Org", tmp_path / "s.csv")
    assert cwd == tmp_path / "inference" and Path(command[1]).is_file()


def test_the_v6_0_pre_tag_crash_is_explained() -> None:
    log = ("[2025-12-23 00:00:00,000 submission_checker.py:2707 ERROR] open/X/results/s/b/Offline/performance/run_1 "
           "caused exception in check_performance_dir: 'v6.0'\n")
    verdict = parse_log(log, 1, 2, ["python", "x.py", "--version", "v6.0"])
    assert verdict.crashed_on_version and "master" in verdict.checks()[-1].fix
