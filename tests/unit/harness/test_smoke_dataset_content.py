"""The embedded smoke set's content: OpenOrca schema, 64 sequential ids, varied prompts and answer lengths."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from harness.dataset import SMOKE_FILE, load_references, smoke_entries

FIELDS = {"id", "system_prompt", "question", "output"}


@pytest.fixture(scope="module")
def entries() -> list[dict[str, str]]:
    raw = resources.files("harness").joinpath(SMOKE_FILE).read_bytes()
    data = json.loads(raw.decode("utf-8"))
    assert isinstance(data, list)
    return data


def _words(text: str) -> int:
    return len(text.split())


def test_schema_is_the_openorca_one(entries: list[dict[str, str]]) -> None:
    for entry in entries:
        assert set(entry) == FIELDS, entry.get("id")
        assert all(isinstance(entry[key], str) for key in FIELDS), entry["id"]
        assert entry["question"].strip() == entry["question"] and entry["question"], entry["id"]
        assert entry["output"].strip() == entry["output"] and entry["output"], entry["id"]
        assert entry["system_prompt"].strip() == entry["system_prompt"], entry["id"]


def test_64_unique_sequential_ids(entries: list[dict[str, str]]) -> None:
    ids = [entry["id"] for entry in entries]
    assert len(entries) >= 48
    assert len(set(ids)) == len(ids) == 64
    assert ids == [f"smoke-{n:03d}" for n in range(1, 65)]


def test_share_with_system_prompt(entries: list[dict[str, str]]) -> None:
    share = sum(1 for entry in entries if entry["system_prompt"]) / len(entries)
    assert 0.25 <= share <= 0.45


def test_answer_lengths_are_spread(entries: list[dict[str, str]]) -> None:
    words = [_words(entry["output"]) for entry in entries]
    assert min(words) < 30
    assert max(words) > 200
    assert 90 <= sum(words) / len(words) <= 130


def test_questions_are_not_duplicated(entries: list[dict[str, str]]) -> None:
    normalised = [" ".join(entry["question"].lower().split()) for entry in entries]
    assert len(set(normalised)) == len(normalised)


def test_plain_english_text(entries: list[dict[str, str]]) -> None:
    """Plain text: printable characters and newlines only, mostly ASCII (a few maths symbols allowed)."""
    for entry in entries:
        text = entry["system_prompt"] + entry["question"] + entry["output"]
        assert all(ch.isprintable() or ch == "\n" for ch in text), entry["id"]
        assert sum(not ch.isascii() for ch in text) <= 10, entry["id"]


def test_the_loader_reads_every_entry(entries: list[dict[str, str]]) -> None:
    loaded = smoke_entries()
    assert [e.id for e in loaded] == [entry["id"] for entry in entries]
    assert load_references(None) == [entry["output"] for entry in entries]
