"""The full stage set against the real commands: harness run, compliance run TEST06, submission package
and check; then a no-op re-run. The fake backend stands in for a model. Slow: six LoadGen runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_pipeline_local import REPO, pipeline

pytestmark = pytest.mark.slow
URL, COMMIT = "https://github.com/example/mlperf-llm-harness", "0123456789abcdef0123456789abcdef01234567"
STAGES = ["llama2-70b-99.9/Offline/accuracy", "llama2-70b-99.9/Offline/performance", "llama2-70b-99.9/Offline/test06",
          "llama2-70b-99.9/Server/accuracy", "llama2-70b-99.9/Server/performance", "llama2-70b-99.9/Server/test06",
          "package", "check"]


def test_full_pipeline_packages_and_checks_then_reruns_as_a_noop(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(json.dumps({
        "set": ["backend.kind=fake", "backend.output_tokens=16"], "scenarios": ["Offline", "Server"],
        "scenario_set": {"Server": ["loadgen.target_qps=40", "backend.first_token_delay_ms=1"]},
        "output_dir": "out",
        "submission": {"submitter": "MyOrg", "system": str(REPO / "systems" / "2xH100-SXM-80GBx8_RoCE_TRT.json"),
                       "package_args": ["--allow-unsubmittable"], "code_url": URL, "code_commit": COMMIT},
    }))
    first = pipeline("--config", str(config), cwd=tmp_path)
    state = json.loads((tmp_path / "out" / "pipeline-state.json").read_text())["stages"]
    assert [state[s]["status"] for s in STAGES] == ["completed"] * len(STAGES), first.stderr
    assert (first.returncode == 1) == (state["check"]["verdict"] == "fail"), first.stderr
    assert (tmp_path / "out" / "submission" / "open" / "MyOrg").is_dir()
    code = tmp_path / "out" / "submission" / "open" / "MyOrg" / "code" / "llama2-70b-99.9" / "mlperf-llm-harness"
    assert sorted(p.name for p in code.iterdir()) == ["README.md"]  # pinned: the URL + commit, no copied source
    assert f"The code is the public repository {URL} at commit {COMMIT}" in (code / "README.md").read_text()
    test06 = json.loads((tmp_path / "out" / "runs" / STAGES[2] / "manifest.json").read_text())
    assert test06["compliance_test"] == "TEST06"
    again = pipeline("--config", str(config), cwd=tmp_path)
    assert again.returncode == first.returncode
    assert again.stderr.count("skipped (up to date)") == len(STAGES)
