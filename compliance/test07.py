"""TEST07 (gpt-oss-120b): accuracy in performance mode, on the full TEST07 compliance set.

The run logs every sample of the compliance set (990 GPQA prompts) in performance mode; the verification scores
that log with the benchmark's scorer and compares the score with ``test07_accuracy_threshold``. Semantics of
MLCommons inference ``compliance/TEST07/run_verification.py`` (HEAD, 2026), written here independently:

- the threshold: ``--accuracy-threshold`` when given, else the audit.config's ``test07_accuracy_threshold``
  (``float()`` of the value), else an error;
- the score: the first match of ``--score-pattern`` (default ``'exact_match':\\s*([\\d.]+)``) in the accuracy
  script's output (stdout and stderr together, universal newlines), ``float()`` of its group 1; no match, or a
  group that is no float, means "could not parse";
- pass: ``score >= threshold``;
- ``verify_accuracy.txt`` = the script's output as it was read, then a blank line, 80 ``=``,
  ``TEST07 Verification Summary``, 80 ``=``, and either ``Accuracy score: <float>``, ``Accuracy threshold:
  <float>``, ``Accuracy check pass: <bool>`` and ``TEST PASS``/``TEST FAIL``, or ``Error: Could not parse
  accuracy score`` and ``TEST FAIL`` (floats as Python's ``str``). The checker passes the file when it contains
  ``TEST PASS`` (submission_checker/checks/compliance_check.py).

Our accuracy "script" is a scorer callable (accuracy log path -> the text it prints, i.e. accuracy.txt); the same
text gives a byte-identical file (tests/unit/compliance/test_official_07_09.py runs the official script with
``--accuracy-script "cat FILE"``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from compliance.audit import AUDIT_LOG_SEED, audit_value, official_newlines, render_audit_config
from harness.benchmarks.facts import BenchmarkFacts
from harness.errors import ConfigError

TEST07 = "TEST07"
VERIFY_FILE = "verify_accuracy.txt"
THRESHOLD_KEY = "test07_accuracy_threshold"
SCORE_PATTERN = r"'exact_match':\s*([\d.]+)"
RULE = "=" * 80
PASS_LINE, FAIL_LINE = "TEST PASS", "TEST FAIL"

Scorer = Callable[[Path], str]  # accuracy log -> the text the benchmark's scorer prints (accuracy.txt)


def audit_config(facts: BenchmarkFacts) -> str:
    """TEST07's audit.config for a benchmark (compliance/TEST07/<benchmark>/audit.config, from our facts)."""
    constants = _family_facts(facts)
    samples, threshold = constants.TEST07_SAMPLES, constants.TEST07_THRESHOLD
    return render_audit_config(
        f"TEST07 audit settings written by `compliance run TEST07` for {facts.name} (MLCommons compliance/TEST07): "
        f"log and issue each of the {samples} compliance samples exactly once",
        {"mode": 2, "accuracy_log_rng_seed": AUDIT_LOG_SEED, "accuracy_log_sampling_target": samples,
         "min_query_count": samples, "min_duration": 0, "performance_issue_unique": 1,
         "sample_concatenate_permutation": 0},
        {THRESHOLD_KEY: float(threshold)},
    )


def _family_facts(facts: BenchmarkFacts) -> ModuleType:
    from importlib import import_module

    module = import_module(f"harness.benchmarks.{facts.family}.facts")
    if TEST07 not in facts.compliance_tests or not hasattr(module, "TEST07_THRESHOLD"):
        raise ConfigError(f"{facts.name} has no TEST07 (its compliance tests: {', '.join(facts.compliance_tests)})",
                          hint=f"run `compliance run {facts.compliance_tests[0]}` for {facts.name}")
    return module


def threshold_of(audit_text: str) -> float | None:
    """test07_accuracy_threshold of an audit.config text (None when absent or not a float, as the official)."""
    value = audit_value(audit_text, THRESHOLD_KEY)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Test07Result:
    """A TEST07 verdict: the score found in the scorer's output (None: unparseable), threshold, the file text."""

    __test__ = False

    score: float | None
    threshold: float
    output: str  # the scorer's output as the official script reads it
    pattern: str = SCORE_PATTERN

    @property
    def passed(self) -> bool:
        """The score meets the threshold (the official ``accuracy_score >= accuracy_threshold``)."""
        return self.score is not None and self.score >= self.threshold

    def summary_lines(self) -> list[str]:
        """The summary block run_verification.py appends (after a blank line)."""
        lines = [RULE, "TEST07 Verification Summary", RULE]
        if self.score is None:
            return [*lines, "Error: Could not parse accuracy score", FAIL_LINE]
        return [*lines, f"Accuracy score: {self.score}", f"Accuracy threshold: {self.threshold}",
                f"Accuracy check pass: {self.passed}", PASS_LINE if self.passed else FAIL_LINE]

    def render(self) -> str:
        """verify_accuracy.txt: the scorer's output, then the summary block."""
        return self.output + "\n" + "".join(line + "\n" for line in self.summary_lines())


def parse_score(output: str, pattern: str = SCORE_PATTERN) -> float | None:
    """The first match's group 1 as a float, or None (no match, or not a float: the official prints an error)."""
    try:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else None
    except Exception:  # a bad pattern or value: the official script catches everything here
        return None


def verify_output(output: str, threshold: float, pattern: str = SCORE_PATTERN) -> Test07Result:
    """Judge a scorer's output against the threshold."""
    text = official_newlines(output)
    return Test07Result(parse_score(text, pattern), float(threshold), text, pattern)


def verify_log(log: Path, scorer: Scorer, threshold: float, pattern: str = SCORE_PATTERN) -> Test07Result:
    """Score one mlperf_log_accuracy.json with the scorer and judge the score."""
    return verify_output(scorer(log), threshold, pattern)
