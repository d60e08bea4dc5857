"""Offline sentence splitting equals nltk's Punkt with the official English model (3.8.1 and 3.10.4)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

from harness.benchmarks.scoring import sentences
from harness.errors import ConfigError
from tests.unit.harness.benchmarks.scoring.corpus import document

REPO = Path(__file__).resolve().parents[4]
# ../shared/reference-data next to the checkout (or next to the folder of worktrees).
_CANDIDATES = [root / "shared" / "reference-data" / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
               for root in (REPO.parent, REPO.parent.parent)]
PUNKT_TAB = next((c for c in _CANDIDATES if c.is_dir()), _CANDIDATES[0])
NLTK310_SPLITS = Path(__file__).with_name("data") / "nltk310_splits.json"
needs_punkt_tab = pytest.mark.skipif(not PUNKT_TAB.is_dir(), reason="../shared/reference-data is absent")


def _lines(name: str) -> list[str]:
    return [line for line in (PUNKT_TAB / name).read_text(encoding="utf-8").split("\n") if line]


def _official_parameters() -> PunktParameters:
    """The official punkt_tab files read the way nltk >= 3.9 reads them."""
    params = PunktParameters()
    params.abbrev_types = set(_lines("abbrev_types.txt"))
    params.sent_starters = set(_lines("sent_starters.txt"))
    params.collocations = {tuple(line.split("\t")) for line in _lines("collocations.tab")}
    for line in _lines("ortho_context.tab"):
        word, flags = line.split("\t")
        params.ortho_context[word] = int(flags)
    return params


@needs_punkt_tab
def test_bundled_parameters_equal_the_official_punkt_tab_model() -> None:
    ours, official = sentences.english_parameters(), _official_parameters()
    assert len(official.abbrev_types) == 156
    assert ours.abbrev_types == official.abbrev_types
    assert ours.collocations == official.collocations
    assert ours.sent_starters == official.sent_starters
    assert dict(ours.ortho_context) == dict(official.ortho_context)


@needs_punkt_tab
def test_default_splitter_equals_nltk_381_with_the_official_model() -> None:
    official = PunktSentenceTokenizer(_official_parameters())
    rng = random.Random(381)
    docs = [document(rng) for _ in range(1500)]
    docs += ["Dr. Smith went to Washington, D.C. on Jan. 5. He met Mr. Jones.", "He said “Stop.” Then he left."]
    mismatches = [d for d in docs if sentences.split_sentences(d) != official.tokenize(d)]
    assert mismatches == []


def test_nltk310_splitter_equals_a_real_nltk_3_10_4() -> None:
    fixture = json.loads(NLTK310_SPLITS.read_text(encoding="utf-8"))
    assert fixture["nltk"] == "3.10.4"
    cases = fixture["cases"]
    mismatches = [c["text"] for c in cases if sentences.split_sentences(c["text"], "nltk-3.10") != c["sentences"]]
    assert mismatches == []
    differing = [c for c in cases if sentences.split_sentences(c["text"], "nltk-3.8") != c["sentences"]]
    assert len(differing) > 100  # the fixture does exercise the difference


def test_curly_closing_quote_splits_differ_between_the_two_splitters() -> None:
    text = "He said “Stop.” Then he left."
    assert sentences.split_sentences(text, "nltk-3.8") == [text]  # 3.8.1 sees no boundary after .”
    assert sentences.split_sentences(text, "nltk-3.10") == ["He said “Stop.”", "Then he left."]
    assert sentences.split_sentences('He said "Stop." Then he left.', "nltk-3.8") == \
        ['He said "Stop."', "Then he left."]


def test_postprocess_strips_and_joins_sentences_with_newlines() -> None:
    assert sentences.postprocess("  First one. Second one!  \n") == "First one.\nSecond one!"
    assert sentences.postprocess("") == ""
    assert sentences.postprocess(" \n\t ") == ""
    assert sentences.postprocess("no full stop") == "no full stop"


def test_splitting_never_loads_nltk_data(monkeypatch: pytest.MonkeyPatch) -> None:
    import nltk.data

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("nltk.data was asked for a resource")

    monkeypatch.setattr(nltk.data, "load", refuse)
    monkeypatch.setattr(nltk.data, "find", refuse)
    sentences.sentence_splitter.cache_clear()
    assert sentences.split_sentences("One. Two.") == ["One.", "Two."]
    assert sentences.split_sentences("One.” Two.", "nltk-3.10") == ["One.”", "Two."]


def test_unknown_splitter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown sentence splitter 'nltk-3\.9'"):
        sentences.split_sentences("a", "nltk-3.9")
