"""Every shipped example config validates."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from tests.conftest import REPO


@pytest.mark.parametrize("path", sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_config_validates(path: Path) -> None:
    config = load_config(path)
    assert config.benchmark.startswith("llama2-70b")
