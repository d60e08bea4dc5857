"""Every harness module that another package (compliance, submission, benchmarks) imports declares `__all__`,
and what those packages import from it is exactly in that list (modelled on httpx's test_exported_members)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONSUMERS = ("compliance", "submission", "benchmarks")


def _imports_from_harness() -> dict[str, set[str]]:
    """harness module -> the names other packages import from it (`from harness.x import a, b`)."""
    found: dict[str, set[str]] = {}
    for package in CONSUMERS:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
                    for alias in node.names:
                        submodule = f"{node.module}.{alias.name}"
                        if importlib.util.find_spec(node.module) and _is_module(submodule):
                            found.setdefault(submodule, set())
                        else:
                            found.setdefault(node.module, set()).add(alias.name)
    return found


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


IMPORTED = _imports_from_harness()


def test_other_packages_use_harness_modules() -> None:
    assert {"harness.artifacts", "harness.errors", "harness.types", "harness.rounds"} <= set(IMPORTED)


@pytest.mark.parametrize("module_name", sorted(IMPORTED))
def test_module_declares_what_other_packages_import(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module_name} is imported by {', '.join(CONSUMERS)} but declares no __all__"
    assert len(exported) == len(set(exported)), f"{module_name}.__all__ lists a name twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{module_name}.__all__ names what it does not define: {missing}"
    unexported = sorted(IMPORTED[module_name] - set(exported))
    assert not unexported, f"other packages import {unexported} from {module_name}, which are not in its __all__"
