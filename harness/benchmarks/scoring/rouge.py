"""Per-sample ROUGE F-measures exactly as rouge_score 0.1.2 computes them (use_stemmer=True).

The fast engine is ``rouge-score-rs`` (Rust, all cores, bit-identical to rouge_score: a test in
tests/unit/harness/benchmarks/scoring proves it on thousands of varied pairs); ``rouge_score`` itself is the
fallback when the Rust package is missing, and the reference the tests compare against.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from harness.errors import ConfigError, EnvironmentProblem

__all__ = ["ENGINES", "ROUGE_TYPES", "available_engine", "score_rouge"]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")
ENGINES = ("auto", "rust", "python")


def available_engine(engine: str = "auto") -> str:
    """The engine that will score: 'rust' (rouge-score-rs) or 'python' (rouge_score)."""
    if engine not in ENGINES:
        raise ConfigError(f"unknown ROUGE engine {engine!r}; expected one of {', '.join(ENGINES)}")
    has_rust = importlib.util.find_spec("rouge_score_rs") is not None
    if engine == "rust" and not has_rust:
        raise EnvironmentProblem("the ROUGE engine 'rust' needs the package rouge-score-rs, which is missing",
                                 hint="pip install rouge-score-rs, or use the engine 'python'")
    if engine == "auto":
        return "rust" if has_rust else "python"
    return engine


def _scorer(engine: str) -> Any:
    if engine == "rust":
        from rouge_score_rs import rouge_scorer as rust_scorer

        return rust_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    try:
        from rouge_score import rouge_scorer
    except ImportError:
        raise EnvironmentProblem("scoring ROUGE needs rouge-score or rouge-score-rs; neither is installed",
                                 hint="pip install rouge-score-rs rouge-score==0.1.2") from None
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)


def score_rouge(targets: Sequence[str], predictions: Sequence[str], *,
                engine: str = "auto") -> dict[str, list[float]]:
    """Per-sample F-measures {rouge_type: [f, ...]} of each prediction against its target.

    Texts are expected post-processed (one sentence per line), as rougeLsum splits on newlines.
    """
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
    chosen = available_engine(engine)
    scorer = _scorer(chosen)
    if chosen == "rust":
        scores = scorer.score_batch(list(targets), list(predictions))
    else:
        scores = [scorer.score(t, p) for t, p in zip(targets, predictions, strict=True)]
    return {kind: [float(s[kind].fmeasure) for s in scores] for kind in ROUGE_TYPES}
