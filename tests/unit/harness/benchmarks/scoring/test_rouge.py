"""The fast ROUGE engine (rouge-score-rs) gives bit-identical scores to rouge_score 0.1.2."""

from __future__ import annotations

import importlib.util

import pytest
from rouge_score import rouge_scorer

from harness.benchmarks.scoring import rouge
from harness.errors import ConfigError, EnvironmentProblem
from tests.unit.harness.benchmarks.scoring.corpus import pairs

HAS_RUST = importlib.util.find_spec("rouge_score_rs") is not None
EDGE_PAIRS = [
    ("", ""), ("", "a"), ("a", ""), ("   ", "\n\n"), ("The cat.", "The cat."), ("...", "?!"),
    ("Café naïve résumé.", "cafe naive resume."), ("日本語 テキスト", "日本語"), ("x²+y²", "x2 y2"),
    ("1,000.50 and 3.14", "1 000 50 and 3 14"), ("**Bold** `code` [l](u)", "bold code l u"),
    ("running runs ran", "run running"), ("A\nB\nC", "C\nB\nA"), ("a\n\n\nb", "a b"),
    ("Line one.\nLine two!", "Line two!\nLine one."), ("😀 emoji 😀", "emoji"), ("\ud800 lone", "lone"),
]


def _reference_scores(targets: list[str], predictions: list[str]) -> list[dict[str, tuple[float, ...]]]:
    scorer = rouge_scorer.RougeScorer(list(rouge.ROUGE_TYPES), use_stemmer=True)
    return [{k: tuple(v) for k, v in scorer.score(t, p).items()} for t, p in zip(targets, predictions, strict=True)]


@pytest.mark.skipif(not HAS_RUST, reason="rouge-score-rs is not installed")
def test_rust_engine_is_bit_identical_to_rouge_score_on_a_varied_corpus() -> None:
    corpus = pairs(seed=20261128, count=3000, max_sentences=4) + EDGE_PAIRS
    targets, predictions = [t for t, _ in corpus], [p for _, p in corpus]
    assert sum(1 for t in targets if "\n" in t) > 500  # rougeLsum sees multi-line texts
    from rouge_score_rs import rouge_scorer as rust_scorer

    fast = rust_scorer.RougeScorer(list(rouge.ROUGE_TYPES), use_stemmer=True).score_batch(targets, predictions)
    expected = _reference_scores(targets, predictions)
    mismatches = [i for i, (f, e) in enumerate(zip(fast, expected, strict=True))
                  if {k: tuple(v) for k, v in f.items()} != e]
    assert mismatches == [], f"first mismatch: {corpus[mismatches[0]]!r}"


@pytest.mark.skipif(not HAS_RUST, reason="rouge-score-rs is not installed")
def test_score_rouge_engines_agree_and_return_fmeasures() -> None:
    corpus = pairs(seed=7, count=200, max_sentences=4) + EDGE_PAIRS
    targets, predictions = [t for t, _ in corpus], [p for _, p in corpus]
    fast = rouge.score_rouge(targets, predictions, engine="rust")
    slow = rouge.score_rouge(targets, predictions, engine="python")
    assert fast == slow
    expected = _reference_scores(targets, predictions)
    assert fast["rougeLsum"] == [e["rougeLsum"][2] for e in expected]
    assert set(fast) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}


def test_auto_engine_prefers_rust_and_rejects_unknown_names() -> None:
    assert rouge.available_engine("auto") == ("rust" if HAS_RUST else "python")
    assert rouge.available_engine("python") == "python"
    with pytest.raises(ConfigError, match="unknown ROUGE engine 'fast'"):
        rouge.available_engine("fast")


def test_missing_rust_package_falls_back_to_rouge_score(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "rouge_score_rs" else real_find_spec(name, *a))
    assert rouge.available_engine("auto") == "python"
    assert rouge.score_rouge(["the cat sat"], ["the cat"])["rouge1"] == [0.8]
    with pytest.raises(EnvironmentProblem, match="rouge-score-rs"):
        rouge.available_engine("rust")


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        rouge.score_rouge(["a", "b"], ["a"])
