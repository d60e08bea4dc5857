"""docs/architecture.md: its layer list is the import-linter layers contract, its module map lists every module."""

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


def _mapped_modules(doc: str) -> set[str]:
    """Module paths named in the module map: `name.py` words under the directory lines (`dir/`) above them.

    An entry line starts within the first 20 columns (its indent is its depth); a description that
    continues on the next lines is indented further and stays with the entry above it.
    """
    block = re.search(r"## Module map\n\n```\n(.*?)```", doc, re.S)
    assert block is not None, "docs/architecture.md has no module map code block"
    found: set[str] = set()
    stack: list[tuple[int, str]] = []  # (indent, directory) of the entries enclosing the current line
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        words = [word.rstrip(",:") for word in line.split()]
        if indent <= 20:  # an entry, not a continuation
            while stack and stack[-1][0] >= indent:
                stack.pop()
            if words[0].endswith("/"):
                stack.append((indent, words[0]))
                words = words[1:]
            else:
                words = words[:1]
        prefix = "".join(directory for _, directory in stack)
        found.update(prefix + word for word in words if re.fullmatch(r"\w+\.py", word))
    return found


def test_every_module_is_in_the_module_map() -> None:
    doc = (REPO / "docs/architecture.md").read_text()
    mapped = _mapped_modules(doc)
    modules = {str(path.relative_to(REPO)) for package in ("harness", "compliance", "submission")
               for path in (REPO / package).rglob("*.py") if path.name != "__init__.py"}
    missing = sorted(modules - mapped)
    assert not missing, f"docs/architecture.md's module map does not list: {', '.join(missing)}"
    stale = sorted(mapped - modules)
    assert not stale, f"docs/architecture.md's module map lists modules that do not exist: {', '.join(stale)}"
