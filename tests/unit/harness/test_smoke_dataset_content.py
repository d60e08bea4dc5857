"""The embedded smoke set's content: OpenOrca schema, 64 sequential ids, varied prompts and answer lengths."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from harness.dataset import SMOKE_FILE, load_references, smoke_entries, smoke_file

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


# --- Llama 3.1 8B's smoke set: invented news articles with reference summaries (harness/data/smoke_cnn_dailymail.json)

CNN_BENCHMARK = "llama3.1-8b"


@pytest.fixture(scope="module")
def articles() -> dict[str, Any]:
    raw = resources.files("harness").joinpath(smoke_file(CNN_BENCHMARK)).read_bytes()
    data = json.loads(raw.decode("utf-8"))
    assert isinstance(data, dict)
    return data


def test_cnn_smoke_set_states_its_licence(articles: dict[str, Any]) -> None:
    assert set(articles) == {"licence", "description", "entries"}
    assert "Apache-2.0" in articles["licence"] and "invented" in articles["licence"]


def test_cnn_smoke_set_has_the_mlcommons_columns_and_unique_ids(articles: dict[str, Any]) -> None:
    entries = articles["entries"]
    assert len(entries) >= 36
    ids = [entry["id"] for entry in entries]
    assert ids == [f"cnndm-smoke-{n:03d}" for n in range(1, len(entries) + 1)]
    for entry in entries:
        assert set(entry) == {"id", "input", "output"}, entry["id"]
        assert all(isinstance(entry[key], str) and entry[key].strip() == entry[key] and entry[key]
                   for key in ("input", "output")), entry["id"]


def test_cnn_summaries_are_short_and_articles_distinct(articles: dict[str, Any]) -> None:
    entries = articles["entries"]
    for entry in entries:
        assert 80 <= _words(entry["input"]) <= 250, entry["id"]
        assert _words(entry["output"]) * 2 < _words(entry["input"]), entry["id"]
        assert 2 <= entry["output"].count(" .") == entry["output"].count("\n") + 1, entry["id"]  # highlights style
        text = entry["input"] + entry["output"]
        assert text.isascii() and all(ch.isprintable() or ch == "\n" for ch in text), entry["id"]
    openings = [" ".join(entry["input"].lower().split()[:8]) for entry in entries]
    assert len(set(openings)) == len(openings)


def test_cnn_smoke_loader_reads_every_entry(articles: dict[str, Any]) -> None:
    loaded = smoke_entries(CNN_BENCHMARK)
    assert [e.id for e in loaded] == [entry["id"] for entry in articles["entries"]]
    assert load_references(None, CNN_BENCHMARK) == [entry["output"] for entry in articles["entries"]]
    assert all(e.system_prompt == "" and e.question.endswith("\n\nSummary:") for e in loaded)
