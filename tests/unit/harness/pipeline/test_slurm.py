"""Slurm mode's job chain (harness/pipeline/slurm.py)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pipeline.driver import PipelineRequest
from harness.pipeline.executor import Decision
from harness.pipeline.plan import build_plan
from harness.pipeline.slurm import plan_chain, render_chain
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
    assert [(j.name, j.after) for j in jobs] == [("llama2_70b_99_9__Offline__performance", None)]
    assert jobs[0].argv == ("python", "-m", "harness", "pipeline", "--config", str(path), "--output-dir",
                            str(tmp_path / "pipeline"), "--executor", "local", "--only",
                            "llama2-70b-99.9/Offline/performance")
    both = plan_chain(plan, PipelineRequest(path), [Decision(s, True, "never ran") for s in plan.stages])
    assert [j.after for j in both] == [None, "llama2_70b_99_9__Offline__accuracy"]


def test_each_job_script_runs_the_pipeline_for_its_one_stage(tmp_path: Path) -> None:
    path = _file(tmp_path, "slurm")
    spec, base = load_pipeline(path)
    plan = build_plan(spec, base, path)
    rendered = render_chain(plan, PipelineRequest(path), [Decision(s, True, "never ran") for s in plan.stages])
    assert [job.name for job, _ in rendered] == ["llama2_70b_99_9__Offline__accuracy",
                                                 "llama2_70b_99_9__Offline__performance"]
    script = rendered[1][1].script_path
    assert script.parent == tmp_path / "pipeline" / "slurm" and script.is_file()
    text = script.read_text()
    assert (f"--config {path} --output-dir {tmp_path / 'pipeline'} --executor local "
            "--only llama2-70b-99.9/Offline/performance") in text
    assert "--ntasks-per-node=1" in text and "--mpi=none" in text  # one plain task: the pipeline process
