"""Accuracy targets of llama2-70b-99 / -99.9 and the verdict, compared exactly as the checker compares.

The submission checker (inference@v4.0 tools/submission/submission_checker.py, unchanged at v5.1 and
HEAD) reads the numbers printed in accuracy.txt back with ``float()`` and compares them with
``value >= reference * factor`` (ROUGE1, ROUGE2, ROUGEL, TOKENS_PER_SAMPLE >= 294.45 * 0.9) and
``not value > 294.45 * 1.1`` (TOKENS_PER_SAMPLE upper limit). rougeLsum, gen_len and gen_num are not
checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.types import Check, CheckStatus

# Reference FP32 accuracy of Llama 2 70B on the 24,576 OpenOrca samples, keyed by accuracy.txt name.
REFERENCE = {"rouge1": 44.4312, "rouge2": 22.0352, "rougeL": 28.6162}
TOKENS_PER_SAMPLE = 294.45
TOKENS_LOWER_FACTOR = 0.9
TOKENS_UPPER_FACTOR = 1.1
FACTORS = {"llama2-70b-99": 0.99, "llama2-70b-99.9": 0.999}
BENCHMARKS = tuple(FACTORS)


@dataclass(frozen=True)
class Verdict:
    """One comparison: value (as printed) op limit."""

    metric: str
    value: float
    op: str  # ">=" or "<="
    limit: float
    passed: bool

    def describe(self) -> str:
        """E.g. 'rouge1 44.5 >= 43.986888'."""
        return f"{self.metric} {self.value} {self.op} {self.limit:.6f}"


def check_benchmark(benchmark: str) -> str:
    """Return benchmark when known, else raise ConfigError."""
    if benchmark not in FACTORS:
        raise ConfigError(f"unknown benchmark {benchmark!r}; expected one of {', '.join(BENCHMARKS)}")
    return benchmark


def targets(benchmark: str) -> dict[str, float]:
    """Lower limits per metric, computed as the checker computes them (reference * factor)."""
    factor = FACTORS[check_benchmark(benchmark)]
    lower = {metric: value * factor for metric, value in REFERENCE.items()}
    lower["tokens_per_sample"] = TOKENS_PER_SAMPLE * TOKENS_LOWER_FACTOR
    return lower


def judge(summary: Mapping[str, float | int], benchmark: str) -> tuple[Verdict, ...]:
    """Verdicts of the checked metrics; values go through str() and float() like accuracy.txt."""
    results = []
    for metric, limit in targets(benchmark).items():
        value = float(str(summary[metric]))
        results.append(Verdict(metric, value, ">=", limit, value >= limit))
    upper = TOKENS_PER_SAMPLE * TOKENS_UPPER_FACTOR
    value = float(str(summary["tokens_per_sample"]))
    results.append(Verdict("tokens_per_sample", value, "<=", upper, not value > upper))
    return tuple(results)


def verdict_checks(verdicts: tuple[Verdict, ...], benchmark: str) -> list[Check]:
    """The verdicts as PASS/FAIL checks for harness.console.checks_table."""
    fixes = {"tokens_per_sample": "generation length is off: check max_new_tokens, EOS handling and --dtype"}
    return [
        Check(f"{v.metric} {v.op} target ({benchmark})", CheckStatus.PASS if v.passed else CheckStatus.FAIL,
              v.describe(), "" if v.passed else fixes.get(v.metric, "accuracy below target for " + benchmark))
        for v in verdicts
    ]
