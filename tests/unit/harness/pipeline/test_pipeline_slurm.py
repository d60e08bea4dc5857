"""Slurm mode's job chain (harness/pipeline/slurm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import EnvironmentProblem
from harness.pipeline.driver import PipelineRequest, run_pipeline
from harness.pipeline.executor import Decision
from harness.pipeline.plan import build_plan
from harness.pipeline.slurm import plan_chain
from harness.pipeline.spec import load_pipeline


def _file(tmp_path: Path, executor: str = "local") -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"set": ["backend.kind=fake"], "scenarios": ["Offline"],
                                "stages": ["accuracy", "performance"], "executor": executor}))
    return path


def test_each_stage_to_run_becomes_a_job_afterok_on_the_previous_one(tmp_path: Path) -> None:
    path = _file(tmp_path)
    spec, base = load_pipeline(path)
    plan = build_plan(spec, base, path)
    decisions = [Decision(plan.stages[0], False, "up to date"), Decision(plan.stages[1], True, "never ran")]
    jobs = plan_chain(plan, PipelineRequest(path), decisions)
    assert [(j.name, j.after) for j in jobs] == [("llama2_70b_99__Offline__performance", None)]
    assert jobs[0].argv == ("python", "-m", "harness", "pipeline", "--config", str(path), "--output-dir",
                            str(tmp_path / "pipeline"), "--only", "llama2-70b-99/Offline/performance")
    both = plan_chain(plan, PipelineRequest(path), [Decision(s, True, "never ran") for s in plan.stages])
    assert [j.after for j in both] == [None, "llama2_70b_99__Offline__accuracy"]


def test_slurm_mode_without_the_slurm_renderer_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="submit_pipeline_jobs"):
        run_pipeline(PipelineRequest(_file(tmp_path, "slurm")), lambda _: None)
    assert not (tmp_path / "pipeline").exists()
