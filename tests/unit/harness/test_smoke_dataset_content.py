"""The embedded smoke set: the OpenOrca-like schema, enough varied samples, unique ids and questions."""

from __future__ import annotations

import json
from importlib import resources


def _entries() -> list[dict[str, str]]:
    return json.loads(resources.files("harness").joinpath("data/smoke_dataset.json").read_text())


def test_schema_ids_and_count() -> None:
    entries = _entries()
    assert len(entries) >= 48
    assert [e["id"] for e in entries] == [f"smoke-{n:03d}" for n in range(1, len(entries) + 1)]
    for entry in entries:
        assert set(entry) == {"id", "system_prompt", "question", "output"}
        assert entry["question"].strip() and entry["output"].strip()


def test_variety_of_prompts_and_answer_lengths() -> None:
    entries = _entries()
    with_system = sum(1 for e in entries if e["system_prompt"]) / len(entries)
    assert 0.25 <= with_system <= 0.45
    words = [len(e["output"].split()) for e in entries]
    assert min(words) < 30 and max(words) > 200
    assert len({e["question"] for e in entries}) == len(entries)
