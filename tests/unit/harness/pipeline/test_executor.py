"""Executor: skip, re-run and stop decisions against the state file (harness/pipeline/executor.py).

The stage commands here are stand-ins (a few lines of Python that write a manifest like `harness run`
does) so that the decision logic runs in milliseconds; tests/integration/test_pipeline_local.py runs
the real commands.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.errors import ConfigError, RunError
from harness.pipeline.driver import PipelineRequest, resume_command
from harness.pipeline.executor import Executor
from harness.pipeline.plan import Plan, build_plan, select
from harness.pipeline.spec import load_pipeline
from harness.pipeline.state import STATE_FILE, StateFile

# Writes a completed manifest into argv[1]; argv[2] = exit code; argv[3] = LoadGen validity.
WRITE_RUN = """
import json, sys, pathlib
out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
m = dict(round="v6.1", benchmark="llama2-70b-99.9", scenario="Offline", mode="performance", backend="fake",
         status="completed", result={"result_validity": sys.argv[3]})
(out / "manifest.json").write_text(json.dumps(m))
if sys.argv[2] != "0":
    print("error: boom in stage")
sys.exit(int(sys.argv[2]))
"""
MAKE_TREE = "import sys, pathlib; pathlib.Path(sys.argv[1]).mkdir(parents=True)"


def _write(tmp_path: Path, **changes: object) -> Path:
    spec = {"set": ["backend.kind=fake"], "scenarios": ["Offline", "Server"], "stages": ["accuracy", "performance",
            "package", "check"], "output_dir": "out", "submission": {"submitter": "Org", "system": "sys.json"}}
    spec.update(changes)
    (tmp_path / "sys.json").write_text("{}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(spec))
    return path


def _executor(path: Path, fail: str | None = None, validity: str = "VALID") -> tuple[Executor, Plan]:
    spec, base = load_pipeline(path)
    plan = build_plan(spec, base, path)
    stages = []
    for stage in plan.stages:
        if stage.config is not None:
            code = "4" if stage.id == fail else "0"
            argv = (sys.executable, "-c", WRITE_RUN, str(stage.output), code, validity)
        elif stage.kind == "package":
            argv = (sys.executable, "-c", MAKE_TREE, str(stage.output))
        else:
            argv = (sys.executable, "-c", "pass")
        stages.append(replace(stage, argv=argv))
    plan = replace(plan, stages=stages)
    request = PipelineRequest(path)
    return Executor(plan, spec, StateFile(plan.root / STATE_FILE), lambda _: None,
                    lambda stage: resume_command(request, stage)), plan


def _ran(executor: Executor, plan: Plan, **kwargs: object) -> list[str]:
    decisions = executor.decide(select(plan, **kwargs), force=False)  # type: ignore[arg-type]
    return executor.execute(decisions).ran


def test_a_second_run_with_unchanged_inputs_runs_nothing(tmp_path: Path) -> None:
    path = _write(tmp_path)
    first = _ran(*_executor(path))
    assert first == ["llama2-70b-99.9/Offline/accuracy", "llama2-70b-99.9/Offline/performance",
                     "llama2-70b-99.9/Server/accuracy", "llama2-70b-99.9/Server/performance", "package", "check"]
    assert _ran(*_executor(path)) == []


def test_changing_one_server_field_reruns_only_the_server_stages_and_their_consumers(tmp_path: Path) -> None:
    _ran(*_executor(_write(tmp_path)))
    changed = _write(tmp_path, scenario_set={"Server": ["loadgen.target_qps=3"]})
    assert _ran(*_executor(changed)) == ["llama2-70b-99.9/Server/accuracy", "llama2-70b-99.9/Server/performance",
                                         "package", "check"]


def test_changing_a_performance_only_override_reruns_only_performance_stages(tmp_path: Path) -> None:
    _ran(*_executor(_write(tmp_path)))
    executor, plan = _executor(_write(tmp_path, stage_set={"performance": ["loadgen.min_duration=5"]}))
    decisions = executor.decide(plan.stages, force=False)
    assert {d.stage.id: d.reason for d in decisions if d.run} == {
        "llama2-70b-99.9/Offline/performance": "inputs changed: config",
        "llama2-70b-99.9/Server/performance": "inputs changed: config",
        "package": "upstream llama2-70b-99.9/Server/performance runs",
        "check": "upstream package runs",
    }


def test_changing_a_generation_field_reruns_every_stage(tmp_path: Path) -> None:
    _ran(*_executor(_write(tmp_path)))
    changed = _write(tmp_path, set=["backend.kind=fake", "generation.max_new_tokens=96"])
    assert len(_ran(*_executor(changed))) == 6


def test_a_failed_stage_stops_the_pipeline_with_the_reason_and_the_resume_command(tmp_path: Path) -> None:
    path = _write(tmp_path)
    executor, plan = _executor(path, fail="llama2-70b-99.9/Server/accuracy")
    with pytest.raises(RunError) as caught:
        _ran(executor, plan)
    assert "stage llama2-70b-99.9/Server/accuracy failed: boom in stage" in caught.value.message
    assert caught.value.hint is not None
    assert caught.value.hint.endswith(f"--config {path.resolve()} --from llama2-70b-99.9/Server/accuracy")
    state = json.loads((tmp_path / "out" / STATE_FILE).read_text())["stages"]
    assert state["llama2-70b-99.9/Server/accuracy"]["status"] == "failed"
    assert "llama2-70b-99.9/Server/performance" not in state
    resumed = _ran(*_executor(path), start="llama2-70b-99.9/Server/accuracy")
    assert resumed == ["llama2-70b-99.9/Server/accuracy", "llama2-70b-99.9/Server/performance", "package", "check"]


def test_an_invalid_result_completes_the_stage_with_a_failing_verdict_and_goes_on(tmp_path: Path) -> None:
    executor, plan = _executor(_write(tmp_path, stages=["performance"], scenarios=["Server"]), validity="INVALID")
    result = executor.execute(executor.decide(plan.stages, force=False))
    record = result.records["llama2-70b-99.9/Server/performance"]
    assert (record.status, record.verdict, record.reason) == ("completed", "fail", "LoadGen result is INVALID")
    assert result.exit_code == 0  # only the submission check gates the exit code


def test_a_run_directory_the_pipeline_did_not_write_is_never_replaced(tmp_path: Path) -> None:
    path = _write(tmp_path, stages=["performance"], scenarios=["Offline"])
    foreign = tmp_path / "out" / "runs" / "llama2-70b-99.9" / "Offline" / "performance"
    foreign.mkdir(parents=True)
    (foreign / "mlperf_log_detail.txt").write_text("someone's run")
    executor, plan = _executor(path)
    with pytest.raises(ConfigError, match="not written by this pipeline"):
        executor.execute(executor.decide(plan.stages, force=False))
    assert (foreign / "mlperf_log_detail.txt").read_text() == "someone's run"


def test_a_replaced_run_directory_makes_its_stage_stale(tmp_path: Path) -> None:
    path = _write(tmp_path, stages=["performance"], scenarios=["Offline"])
    _ran(*_executor(path))
    (tmp_path / "out" / "runs" / "llama2-70b-99.9" / "Offline" / "performance" / "manifest.json").write_text("{}")
    executor, plan = _executor(path)
    assert [d.reason for d in executor.decide(plan.stages, force=False)] == ["run directory changed or incomplete"]


def test_force_reruns_up_to_date_stages(tmp_path: Path) -> None:
    path = _write(tmp_path, stages=["performance"], scenarios=["Offline"])
    _ran(*_executor(path))
    executor, plan = _executor(path)
    assert [d.run for d in executor.decide(plan.stages, force=True)] == [True]
