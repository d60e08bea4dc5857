"""Every shipped example config validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.benchmarks.registry import BENCHMARK_NAMES
from harness.config import load_config
from tests.conftest import REPO


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.benchmark in BENCHMARK_NAMES and config.generation.max_new_tokens is not None


@pytest.mark.parametrize("path", sorted((REPO / "examples" / "pipelines").glob("*.yaml")), ids=lambda p: p.name)
def test_example_pipeline_plans_and_pins_its_code(path: Path) -> None:
    from harness.pipeline.plan import build_plan
    from harness.pipeline.spec import load_pipeline

    spec, base = load_pipeline(path)
    plan = build_plan(spec, base, path, output_dir=path.parent / "unused")  # nothing is written
    package = plan.stage("package")
    assert package is not None and spec.submission is not None and spec.submission.code_url
    assert "--code-url" in package.argv and "--code-commit" in package.argv
    assert all(Path(p).is_file() for p in package.input_files)
