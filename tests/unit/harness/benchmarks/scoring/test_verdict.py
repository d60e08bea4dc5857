"""Verdicts compare the printed numbers with the checker's targets, as the checker does."""

from __future__ import annotations

import pytest

from harness.benchmarks.scoring.verdict import judge, targets, verdict_checks
from harness.errors import ConfigError
from harness.types import CheckStatus


def _summary(rouge1: float, tokens: float) -> dict[str, float | int]:
    return {"rouge1": rouge1, "rouge2": 23.0, "rougeL": 29.0, "rougeLsum": 41.0, "gen_len": 1, "gen_num": 1,
            "gen_tok_len": 1, "tokens_per_sample": tokens}


def test_targets_are_the_checker_products() -> None:
    assert targets("llama2-70b-99")["rouge1"] == 44.4312 * 0.99
    assert targets("llama2-70b-99.9")["rougeL"] == 28.6162 * 0.999
    assert targets("llama2-70b-99.9")["tokens_per_sample"] == 294.45 * 0.9


@pytest.mark.parametrize(("rouge1", "tokens", "passed"), [
    (44.0, 294.5, True), (43.9868, 294.5, False), (44.0, 323.8, True), (44.0, 323.9, False),
    (44.0, 265.0, False), (44.0, 265.1, True),
])
def test_limits_99(rouge1: float, tokens: float, passed: bool) -> None:
    assert all(v.passed for v in judge(_summary(rouge1, tokens), "llama2-70b-99")) is passed


def test_99_9_is_stricter() -> None:
    assert all(v.passed for v in judge(_summary(44.2, 294.5), "llama2-70b-99"))
    failed = [v.metric for v in judge(_summary(44.2, 294.5), "llama2-70b-99.9") if not v.passed]
    assert failed == ["rouge1"]
    checks = verdict_checks(judge(_summary(44.2, 294.5), "llama2-70b-99.9"), "llama2-70b-99.9")
    assert [c.status for c in checks].count(CheckStatus.FAIL) == 1


def test_unknown_benchmark() -> None:
    with pytest.raises(ConfigError, match="benchmark is .gptj-99.; expected one of"):
        targets("gptj-99")
