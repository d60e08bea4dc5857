"""Every shipped systems/*.json validates through submission.system and the shipped JSON Schema."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from submission.system import load_system, read_system_json, shipped_schema

SYSTEMS = sorted((Path(__file__).resolve().parents[2] / "systems").glob("*.json"))


def test_there_is_at_least_one_example() -> None:
    assert SYSTEMS


@pytest.mark.parametrize("path", SYSTEMS, ids=lambda p: p.name)
def test_system_description_validates(path: Path) -> None:
    load_system(path)
    jsonschema.Draft202012Validator(shipped_schema()).validate(read_system_json(path))
