"""The pipeline on the embedded default (real SmolLM2-135M on the CPU): full stage set, no-op re-run, and a
kill in the accuracy stage that resumes to the same accuracy.txt. Slow: several real model runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.test_pipeline_resume import _kill_when_cached, _pipeline

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.timeout(2400)]
STAGE = "llama2-70b-99.9/Offline/accuracy"
# Small enough for a CPU: at most 8 samples, 2 per batch, 16 new tokens. Batches are whole in the cache, so the
# resumed run forms the same batches as an uninterrupted one and greedy decoding gives the same tokens.
SMALL = ["dataset.max_samples=8", "backend.max_batch_size=2", "generation.max_new_tokens=16",
         "backend.batch_wait_ms=0"]


def _config(tmp_path: Path, name: str, stages: list[str], **extra: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({"set": SMALL, "scenarios": ["Offline"], "stages": stages, "output_dir": name,
                                **extra}))
    return path


def test_embedded_default_accuracy_stage_killed_mid_run_resumes_to_the_same_accuracy_txt(tmp_path: Path) -> None:
    whole = _pipeline(_config(tmp_path, "whole", ["accuracy"]))
    assert whole.returncode == 0, whole.stderr
    config = _config(tmp_path, "killed", ["accuracy"])
    cached = _kill_when_cached(config, tmp_path / "killed" / "cache" / STAGE, at_least=2)
    samples = json.loads((tmp_path / "whole" / "runs" / STAGE / "manifest.json").read_text())["sample_count"]
    assert 2 <= cached < samples
    resumed = _pipeline(config)
    assert resumed.returncode == 0, resumed.stderr
    run_dir = tmp_path / "killed" / "runs" / STAGE
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["details"]["output_cache"]["served_from_cache"] == cached
    assert (run_dir / "accuracy.txt").read_text() == (tmp_path / "whole" / "runs" / STAGE / "accuracy.txt").read_text()
    assert "skipped (up to date)" in _pipeline(config).stderr
