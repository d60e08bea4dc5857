"""Accuracy verdicts against a benchmark's targets (harness.benchmarks.registry), compared as the checker compares.

The submission checker (inference@v4.0 tools/submission/submission_checker.py, the same at v5.x and in the modular
checker at HEAD) reads the numbers printed in accuracy.txt back with ``float()`` and compares them with
``value >= reference * factor`` for every target and ``not value > reference * upper_factor`` for every upper
limit. Metrics the table lists no target for (rougeLsum, gen_num for Llama 2 70B) are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from harness.benchmarks.registry import benchmark_facts
from harness.types import Check, CheckStatus

__all__ = ["Verdict", "judge", "targets", "upper_limits", "verdict_checks"]


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


def targets(benchmark: str) -> dict[str, float]:
    """Lower limits per summary key, computed as the checker computes them (reference * factor)."""
    return {m.key: m.lower for m in benchmark_facts(benchmark).metrics if m.lower is not None}


def upper_limits(benchmark: str) -> dict[str, float]:
    """Upper limits per summary key (reference * upper_factor), for the metrics that have one."""
    return {m.key: m.upper for m in benchmark_facts(benchmark).metrics if m.upper is not None}


def judge(summary: Mapping[str, float | int], benchmark: str) -> tuple[Verdict, ...]:
    """Verdicts of the checked metrics; values go through str() and float() like accuracy.txt."""
    results = []
    for metric, limit in targets(benchmark).items():
        value = float(str(summary[metric]))
        results.append(Verdict(metric, value, ">=", limit, value >= limit))
    for metric, upper in upper_limits(benchmark).items():
        if metric not in summary and metric not in targets(benchmark):
            continue  # an upper limit only, not computed: the checker's pattern does not match, which passes
        value = float(str(summary[metric]))
        results.append(Verdict(metric, value, "<=", upper, not value > upper))
    return tuple(results)


def verdict_checks(verdicts: tuple[Verdict, ...], benchmark: str) -> list[Check]:
    """The verdicts as PASS/FAIL checks for harness.console.checks_table."""
    fixes = {"tokens_per_sample": "generation length is off: check max_new_tokens, EOS handling and --dtype",
             "gen_len": "generation length is off: check max_new_tokens, EOS handling and --dtype"}
    return [
        Check(f"{v.metric} {v.op} target ({benchmark})", CheckStatus.PASS if v.passed else CheckStatus.FAIL,
              v.describe(), "" if v.passed else fixes.get(v.metric, "accuracy below target for " + benchmark))
        for v in verdicts
    ]
