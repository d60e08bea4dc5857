"""TEST07 and TEST09 (gpt-oss-120b) in the submission tree: where the packager puts them, how our rules judge them.

The official checker (inference HEAD tools/submission/submission_checker/checks/compliance_check.py) reads, per
results scenario dir R (v6.x; compliance/<sys>/<bench>/<scenario>/ before): R/TEST07/verify_accuracy.txt and
R/TEST09/verify_output_len.txt, each passing when it contains 'TEST PASS'. run_verification.py also leaves
accuracy/mlperf_log_accuracy.json and performance/run_1/ beside them; the packager copies all of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from compliance.verify import verify_test07_run, verify_test09_run
from harness.artifacts import Manifest, RunArtifacts
from harness.types import CheckStatus, RunStatus
from submission.inputs import RunInput
from submission.layout import Tree, round_layout
from submission.package import write_compliance
from submission.rules import closed
from submission.rules._base import Findings
from tests.unit.compliance.compliance_logs import entry

AUDIT_LINE = ':::MLLOG {"key": "warning_generic_message", "value": "Found Audit Config file (audit.config)."}\n'
BENCH, SYSTEM, SCENARIO = "gpt-oss-120b", "sys1", "Offline"


def audit_run(root: Path, test: str, lengths: list[int], score: float = 70.0) -> RunInput:
    """A verified TEST07/TEST09 run directory (manifest, LoadGen logs, <TEST>/)."""
    root.mkdir(parents=True)
    RunArtifacts(root).write_manifest(Manifest(round="v6.1", benchmark=BENCH, scenario=SCENARIO, mode="performance",
                                               compliance_test=test, backend="fake", status=RunStatus.COMPLETED))
    (root / "mlperf_log_detail.txt").write_text(AUDIT_LINE)
    (root / "mlperf_log_summary.txt").write_text("MLPerf Results Summary\n")
    (root / "mlperf_log_accuracy.json").write_text(json.dumps([entry(i, [1] * n) for i, n in enumerate(lengths)]))
    if test == "TEST07":
        verify_test07_run(root, lambda log: f"{{'exact_match': {score}}}\n")
    else:
        verify_test09_run(root)
    return RunInput(root, RunArtifacts(root).read_manifest())


def package(tmp_path: Path, round_name: str, runs: dict[str, RunInput]) -> Tree:
    tree = Tree(tmp_path / "tree", "org", round_layout(round_name), "closed")
    group = SimpleNamespace(benchmark=BENCH, scenario=SCENARIO, compliance=runs)
    write_compliance(tree, SYSTEM, group)  # type: ignore[arg-type]
    return tree


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(("round_name", "where"), [("v6.1", "closed/org/results/sys1/gpt-oss-120b/Offline"),
                                                   ("v6.0", "closed/org/results/sys1/gpt-oss-120b/Offline")])
def test_test07_and_test09_land_where_the_checker_reads_them(tmp_path: Path, round_name: str, where: str) -> None:
    runs = {"TEST07": audit_run(tmp_path / "t07", "TEST07", [3, 4]),
            "TEST09": audit_run(tmp_path / "t09", "TEST09", [1250, 1300])}
    tree = package(tmp_path, round_name, runs)
    assert files(tree.root) == [f"{where}/{name}" for name in (
        "TEST07/accuracy/mlperf_log_accuracy.json", "TEST07/performance/run_1/mlperf_log_detail.txt",
        "TEST07/performance/run_1/mlperf_log_summary.txt", "TEST07/verify_accuracy.txt",
        "TEST09/accuracy/mlperf_log_accuracy.json", "TEST09/performance/run_1/mlperf_log_detail.txt",
        "TEST09/performance/run_1/mlperf_log_summary.txt", "TEST09/verify_output_len.txt")]
    assert (tree.root / where / "TEST09" / "verify_output_len.txt").read_bytes() == \
        (tmp_path / "t09" / "TEST09" / "verify_output_len.txt").read_bytes()
    findings = Findings(tree.root, round_name, division="closed")
    closed.check_compliance(findings, tree, (SYSTEM, BENCH, SCENARIO), _facts())
    assert not [c for c in findings.checks if c.status is CheckStatus.FAIL]


def _facts():  # type: ignore[no-untyped-def]
    from harness.benchmarks.registry import benchmark_facts

    return benchmark_facts(BENCH, "v6.1")


def test_a_missing_test_is_a_closed_failure_with_the_command_that_makes_it(tmp_path: Path) -> None:
    tree = package(tmp_path, "v6.1", {"TEST07": audit_run(tmp_path / "t07", "TEST07", [3])})
    findings = Findings(tree.root, "v6.1", division="closed")
    closed.check_compliance(findings, tree, (SYSTEM, BENCH, SCENARIO), _facts())
    failed = [c for c in findings.checks if c.status is CheckStatus.FAIL]
    assert len(failed) == 1 and "TEST09 is missing" in failed[0].detail
    assert failed[0].path.endswith("Offline/TEST09/verify_output_len.txt")
    assert "compliance run TEST09 --scenario Offline" in failed[0].fix


@pytest.mark.parametrize(("division", "status"), [("closed", CheckStatus.FAIL), ("open", CheckStatus.WARN)])
def test_test_fail_is_a_failure_in_closed_and_a_warning_in_open(tmp_path: Path, division: str,
                                                                 status: CheckStatus) -> None:
    runs = {"TEST07": audit_run(tmp_path / "t07", "TEST07", [3], score=12.5),  # below 60.698
            "TEST09": audit_run(tmp_path / "t09", "TEST09", [10, 20])}  # far below 1150.38
    tree = package(tmp_path, "v6.1", runs)
    findings = Findings(tree.root, "v6.1", division=division)
    closed.check_compliance(findings, tree, (SYSTEM, BENCH, SCENARIO), _facts())
    flagged = {c.path.split("/")[-2]: c for c in findings.checks if c.status is status}
    assert set(flagged) == {"TEST07", "TEST09"}
    assert "below test07_accuracy_threshold" in flagged["TEST07"].detail
    assert "outside the TEST09 bounds" in flagged["TEST09"].detail


def test_llama_keeps_test06_only(tmp_path: Path) -> None:
    from harness.benchmarks.registry import benchmark_facts

    tree = Tree(tmp_path / "tree", "org", round_layout("v6.1"), "closed")
    findings = Findings(tree.root, "v6.1", division="closed")
    closed.check_compliance(findings, tree, (SYSTEM, "llama2-70b-99.9", SCENARIO),
                            benchmark_facts("llama2-70b-99.9", "v6.1"))
    assert [c.detail.split(" ")[0] for c in findings.checks] == ["TEST06"]
