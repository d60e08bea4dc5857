"""compliance.results: the four official lines, the checker's reading of them, and read_test06()."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.results import ComplianceResult, SampleFinding, Test06Verdict, checker_passes, read_test06
from harness.errors import InputError
from harness.types import CheckStatus


@pytest.mark.parametrize(("verdict", "text"), [
    (Test06Verdict(None, True, True), "First token check pass: Skipped\nEOS check pass: True\n"
                                      "Sample length check pass: True\nTEST06 verification complete\n"),
    (Test06Verdict(True, False, True), "First token check pass: True\nEOS check pass: False\n"
                                       "Sample length check pass: True\nTEST06 verification failed\n"),
    (Test06Verdict(False, True, False), "First token check pass: False\nEOS check pass: True\n"
                                        "Sample length check pass: False\nTEST06 verification failed\n"),
])
def test_render_is_the_official_four_lines(verdict: Test06Verdict, text: str) -> None:
    assert verdict.render() == text
    assert verdict.passed is text.endswith("complete\n")


@pytest.mark.parametrize(("lines", "passes"), [
    (["First token check pass: Skipped", "EOS check pass: True", "Sample length check pass: True"], True),
    (["  First token check pass: True ", "EOS check pass: True", "Sample length check pass: True"], True),
    (["First token check pass: True", "EOS check pass: True", "Sample length check pass: False"], False),
    (["First token check pass: False", "EOS check pass: True", "Sample length check pass: True"], False),
    (["EOS check pass: True", "Sample length check pass: True", "TEST06 verification complete"], False),
])
def test_checker_semantics(lines: list[str], passes: bool) -> None:
    assert checker_passes(lines) is passes


def _store(root: Path, text: str, with_log: bool = True) -> Path:
    test06 = root / "TEST06"
    (test06 / "accuracy").mkdir(parents=True)
    (test06 / "verify_accuracy.txt").write_text(text)
    if with_log:
        (test06 / "accuracy" / "mlperf_log_accuracy.json").write_text("[]")
    return test06


def test_read_test06_from_run_dir_or_test06_dir(tmp_path: Path) -> None:
    test06 = _store(tmp_path, Test06Verdict(True, True, False).render())
    for path in (tmp_path, test06):
        stored = read_test06(path)
        assert stored.passed is False
        assert stored.lines[2] == "Sample length check pass: False"
        assert stored.accuracy_log.is_file() and stored.verify_file.is_file()


def test_read_test06_passing(tmp_path: Path) -> None:
    _store(tmp_path, Test06Verdict(None, True, True).render())
    assert read_test06(tmp_path).passed is True


def test_read_test06_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"verify_accuracy.txt does not exist"):
        read_test06(tmp_path)
    _store(tmp_path, Test06Verdict(None, True, True).render(), with_log=False)
    with pytest.raises(InputError, match="accuracy log"):
        read_test06(tmp_path)


def test_checks_rows_name_the_first_failing_sample() -> None:
    finding = SampleFinding("EOS check", 17, 3, 2, (5, 2, 2), "2 trailing EOS")
    result = ComplianceResult("TEST06", Test06Verdict(None, False, True), (finding,), {"EOS check": "trim"},
                              ("odd",), 100)
    rows = result.checks()
    assert [r.status for r in rows] == [CheckStatus.PASS, CheckStatus.FAIL, CheckStatus.PASS, CheckStatus.WARN]
    assert "qsl_idx 17" in rows[1].detail and "1 of 100" in rows[1].detail and rows[1].fix == "trim"
    assert "[tokens: 5, 2, 2]" in finding.describe()


def test_read_test06_from_a_relative_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _store(tmp_path / "Offline-TEST06", Test06Verdict(None, True, True).render())
    monkeypatch.chdir(tmp_path)
    for given in (Path("Offline-TEST06"), Path("Offline-TEST06") / "TEST06"):
        assert read_test06(given).passed is True  # not joined twice (Offline-TEST06/Offline-TEST06/...)
