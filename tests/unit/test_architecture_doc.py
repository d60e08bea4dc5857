"""docs/architecture.md's layer list is the import-linter layers contract (so the doc cannot drift)."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO


def test_documented_layers_equal_the_enforced_contract() -> None:
    doc = (REPO / "docs/architecture.md").read_text()
    block = re.search(r"<!-- layers:start -->\n(.*?)<!-- layers:end -->", doc, re.S)
    assert block is not None
    documented = [line.removeprefix("- ").strip() for line in block.group(1).splitlines() if line.strip()]
    contracts = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["type"] == "layers")["layers"]
    assert documented == layers
