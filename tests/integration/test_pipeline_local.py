"""`harness pipeline` end to end with real `harness run` stages, real LoadGen and the fake backend.

The fake backend stands in for a model (TensorRT-LLM cannot run here); everything else is real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUN_IDS = ["llama2-70b-99.9/Offline/performance", "llama2-70b-99.9/Server/performance"]


def pipeline(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m harness pipeline ARGS` from this checkout."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "harness", "pipeline", *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=900)


def _write(path: Path, server_qps: int) -> None:
    path.write_text(json.dumps({
        "set": ["backend.kind=fake", "backend.output_tokens=16", "dataset.max_samples=6"],
        "scenarios": ["Offline", "Server"], "stages": ["performance"], "output_dir": "out",
        "scenario_set": {"Server": [f"loadgen.target_qps={server_qps}", "backend.first_token_delay_ms=1"]},
    }))


def _state(tmp_path: Path) -> dict[str, dict[str, object]]:
    return json.loads((tmp_path / "out" / "pipeline-state.json").read_text())["stages"]


def test_pipeline_runs_then_is_a_noop_then_reruns_only_the_changed_scenario(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    _write(config, 40)
    dry = pipeline("--config", str(config), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("run  llama2-70b-99.9/") == 2 and not (tmp_path / "out").exists()

    first = pipeline("--config", str(config), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    state = _state(tmp_path)
    assert [state[i]["status"] for i in RUN_IDS] == ["completed", "completed"]
    for stage_id in RUN_IDS:
        manifest = json.loads((tmp_path / "out" / "runs" / stage_id / "manifest.json").read_text())
        assert manifest["status"] == "completed" and manifest["backend"] == "fake"
    started = {i: state[i]["started_at"] for i in RUN_IDS}

    again = pipeline("--config", str(config), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("skipped (up to date)") == 2 and "running" not in again.stderr
    assert {i: _state(tmp_path)[i]["started_at"] for i in RUN_IDS} == started

    _write(config, 30)
    changed = pipeline("--config", str(config), cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert "llama2-70b-99.9/Offline/performance: skipped (up to date)" in changed.stderr
    assert "llama2-70b-99.9/Server/performance: running (inputs changed: config)" in changed.stderr
    assert "llama2-70b.Server.target_qps = 30" in (tmp_path / "out" / "runs" / RUN_IDS[1] / "user.conf").read_text()
    assert _state(tmp_path)[RUN_IDS[0]]["started_at"] == started[RUN_IDS[0]]

    runs = [str(tmp_path / "out" / "runs" / i) for i in RUN_IDS]
    report = subprocess.run([sys.executable, "-m", "harness", "report", *runs, "--output", str(tmp_path / "rep")],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, text=True, capture_output=True, timeout=600)
    assert report.returncode == 0, report.stderr
    table = (tmp_path / "rep" / "runs.md").read_text()
    assert "| Offline/performance | Offline | performance | VALID |" in table and table in report.stdout
    assert len(list((tmp_path / "rep").rglob("*.png"))) == 8 and (tmp_path / "rep" / "index.html").is_file()


def test_a_failing_stage_stops_with_the_reason_and_the_resume_command(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.yaml"
    config.write_text(json.dumps({"set": ["backend.kind=fake", "dataset.path=/nonexistent/orca.pkl"],
                                  "scenarios": ["Offline"], "stages": ["performance"], "output_dir": "out"}))
    result = pipeline("--config", str(config), cwd=tmp_path)
    assert result.returncode == 4
    assert "error: stage llama2-70b-99.9/Offline/performance failed: dataset /nonexistent/orca.pkl does not exist" \
        in result.stderr
    assert f"hint: fix the cause, then resume with: python -m harness pipeline --config {config} --from " \
           "llama2-70b-99.9/Offline/performance" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_output_directory_with_a_hash_quotes_and_spaces_is_used_as_it_is(tmp_path: Path) -> None:
    """The stages get their run directories as typed values: `a #1 "x"` is not cut at ' #' (which would have made
    the run directory `a`, replaced with overwrite on), and nothing the pipeline did not write is touched."""
    bystander = tmp_path / "a"
    bystander.mkdir()
    (bystander / "keep.txt").write_text("not the pipeline's")
    config = tmp_path / "pipeline.yaml"
    config.write_text(json.dumps({
        "set": ["backend.kind=fake", "backend.output_tokens=8", "dataset.max_samples=4"],
        "scenarios": ["Offline"], "stages": ["performance"], "output_dir": 'a #1 "x"'}))
    done = pipeline("--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run = tmp_path / 'a #1 "x"' / "runs" / "llama2-70b-99.9" / "Offline" / "performance"
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert (bystander / "keep.txt").read_text() == "not the pipeline's" and sorted(bystander.iterdir()) == [
        bystander / "keep.txt"]
