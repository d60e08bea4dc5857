"""TEST07/TEST09 audit settings through the installed LoadGen (6.0.x), fake backend: every sample once.

``accuracy_log_sampling_target`` (>= the sample count) makes LoadGen log every response; with
``performance_issue_unique = 1`` it issues each loaded sample exactly once (Offline: one query of all loaded
samples; Server: one query per loaded sample), so the accuracy log of a performance-mode run holds every qsl
index exactly once. The threshold keys LoadGen does not know (test07_accuracy_threshold, test09_*) are ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compliance import test09
from compliance.run import AuditRun, audit_run_config, run_audit
from compliance.verify import verify_test07_run
from harness import runner
from harness.benchmarks.registry import benchmark_facts
from harness.config import load_config

FAKE = ["backend.kind=fake", "generation.max_new_tokens=16", "loadgen.target_qps=500"]
GPT_OSS = [*FAKE, "benchmark=gpt-oss-120b", "round=v6.1"]


def _qsl_indices(run_dir: Path) -> list[int]:
    return sorted(int(e["qsl_idx"]) for e in json.loads((run_dir / "mlperf_log_accuracy.json").read_text()))


def _detail(run_dir: Path) -> str:
    return (run_dir / "mlperf_log_detail.txt").read_text()


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_llama_smoke_set_under_the_test09_audit_config_logs_every_sample_once(tmp_path: Path, scenario: str,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """64 samples, audit min_query_count 6396: performance_issue_unique still issues each sample once."""
    monkeypatch.chdir(tmp_path)
    config = audit_run_config(load_config(None, FAKE), scenario, tmp_path / "run", test="TEST09")
    audit = test09.audit_config(benchmark_facts("gpt-oss-120b"))
    outcome = runner.run(config, audit_config=audit, command=["pytest"], progress=False)
    assert outcome.manifest.status.value == "completed"
    detail = _detail(outcome.run_dir)
    assert "Found Audit Config file" in detail
    assert '"effective_performance_issue_unique", "value": true' in detail
    assert _qsl_indices(outcome.run_dir) == list(range(64))
    assert not (tmp_path / "audit.config").exists()


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_compliance_run_test09_gpt_oss(tmp_path: Path, scenario: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = audit_run_config(load_config(None, GPT_OSS), scenario, tmp_path / "run", test="TEST09")
    done: AuditRun = run_audit(config, command=["pytest"], progress=False)
    samples = done.verification.details["samples"]
    assert _qsl_indices(done.run_dir) == list(range(int(samples)))  # type: ignore[call-overload]
    assert not done.verification.passed  # 16-token answers are far below the 1150.38 bound
    assert "TEST FAIL" in (done.run_dir / "TEST09" / "verify_output_len.txt").read_text()
    for name in ("accuracy/mlperf_log_accuracy.json", "performance/run_1/mlperf_log_detail.txt",
                 "performance/run_1/mlperf_log_summary.txt"):
        assert (done.run_dir / "TEST09" / name).is_file(), name
    manifest = json.loads((done.run_dir / "manifest.json").read_text())
    assert manifest["compliance_test"] == "TEST09" and manifest["details"]["test09"]["passed"] is False


def test_compliance_run_test07_gpt_oss_with_a_stand_in_scorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.chdir(tmp_path)
    config = audit_run_config(load_config(None, GPT_OSS), "Offline", tmp_path / "run", test="TEST07")
    seen: list[Path] = []

    def scorer(log: Path) -> str:
        seen.append(log)
        return f"scored {len(json.loads(log.read_text()))} samples\n{{'exact_match': 75.0}}\n"

    done = run_audit(config, command=["pytest"], progress=False, scorer=scorer)
    assert seen == [done.run_dir / "mlperf_log_accuracy.json"]
    assert done.verification.passed and done.verification.details["score"] == 75.0
    text = (done.run_dir / "TEST07" / "verify_accuracy.txt").read_text()
    assert text.endswith("Accuracy threshold: 60.698\nAccuracy check pass: True\nTEST PASS\n")
    indices = _qsl_indices(done.run_dir)
    assert indices == list(range(len(indices))) and indices
    # verified again with a stricter threshold (the official --accuracy-threshold): TEST FAIL, same log
    again = verify_test07_run(done.run_dir, scorer, 80.0)
    assert not again.passed and "TEST FAIL" in again.verify_file.read_text()


def test_compliance_run_test07_with_the_benchmarks_own_scorer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """scorer=None: the gpt-oss scorer (score_accuracy_log + accuracy_text) on the run's references; the oracle
    fake answers every smoke prompt right, so exact_match is 100."""
    monkeypatch.chdir(tmp_path)
    sets = [*GPT_OSS, "backend.behaviour=oracle", "generation.max_new_tokens=64"]
    config = audit_run_config(load_config(None, sets), "Offline", tmp_path / "run", test="TEST07")
    done = run_audit(config, command=["pytest"], progress=False)
    text = (done.run_dir / "TEST07" / "verify_accuracy.txt").read_text()
    assert "'exact_match': 100.000" in text and text.endswith("Accuracy score: 100.0\nAccuracy threshold: 60.698\n"
                                                                "Accuracy check pass: True\nTEST PASS\n")
