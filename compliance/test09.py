"""TEST09 (gpt-oss-120b): the mean output length of a performance-mode run of the whole performance set.

The run logs every sample (6,396) in performance mode; the verification counts each logged answer's tokens and
checks that the mean lies within ``test09_min_output_tokens`` .. ``test09_max_output_tokens`` (±10 % of the
reference's 1278.20). Semantics of MLCommons inference ``compliance/TEST09/run_verification.py`` (HEAD, 2026),
written here independently:

- the log: ``json.load``; a JSON list is the entries. Anything else (a truncated log, a JSON object) is read
  line by line: blank lines skipped, a line that is one JSON value is an entry, otherwise as many JSON values as
  ``raw_decode`` finds at the start of the line (``{...},`` gives its object; ``[`` gives nothing);
- no entries: the script stops with an error and writes no ``verify_output_len.txt`` (``verify_entries`` raises
  InputError, so ours writes nothing either);
- an entry's length: its ``data`` hex string, stripped, ``bytes.fromhex``, whole 4-byte groups (a trailing
  partial group is dropped): ``len(bytes) // 4``. An entry without ``data`` (or with an empty one) counts 0, and
  so does one whose ``data`` cannot be decoded (the script warns). An entry that is no JSON object crashes the
  script (``entry.get``): InputError here, no file written;
- mean, min, max and the population standard deviation (``sum((x - mean) ** 2) / n``, ``** 0.5``), both checks
  inclusive: ``min <= mean <= max``;
- ``verify_output_len.txt``'s layout is ``Test09Result.render`` (means and deviations with two decimals, the
  bounds as Python's ``str`` of a float); ``TEST PASS`` / ``TEST FAIL`` on the last line, which the checker
  reads (submission_checker/checks/compliance_check.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compliance.audit import AUDIT_LOG_SEED, audit_value, render_audit_config
from harness.benchmarks.facts import BenchmarkFacts
from harness.errors import ConfigError, InputError

TEST09 = "TEST09"
VERIFY_FILE = "verify_output_len.txt"
MIN_KEY, MAX_KEY = "test09_min_output_tokens", "test09_max_output_tokens"
# compliance/TEST09/gpt-oss-120b/audit.config: "a value >= total dataset size" so that every sample is logged
LOG_EVERY_SAMPLE = 10000
RULE, THIN_RULE = "=" * 80, "-" * 40
TITLE = "TEST09: Verify Output Token Length in Performance Mode"
PASS_LINE, FAIL_LINE = "TEST PASS", "TEST FAIL"


def audit_config(facts: BenchmarkFacts) -> str:
    """TEST09's audit.config for a benchmark (compliance/TEST09/<benchmark>/audit.config, from our facts)."""
    low, high = bounds_of(facts)
    samples = facts.performance_samples
    return render_audit_config(
        f"TEST09 audit settings written by `compliance run TEST09` for {facts.name} (MLCommons compliance/TEST09): "
        f"log and issue each of the {samples} performance samples exactly once",
        {"mode": 2, "accuracy_log_rng_seed": AUDIT_LOG_SEED,
         "accuracy_log_sampling_target": max(LOG_EVERY_SAMPLE, samples), "min_query_count": samples,
         "min_duration": 0, "performance_issue_unique": 1, "sample_concatenate_permutation": 0},
        {MIN_KEY: low, MAX_KEY: high},
    )


def bounds_of(facts: BenchmarkFacts) -> tuple[float, float]:
    """The benchmark's mean-output-length bounds (its facts' TEST09_LOW, TEST09_HIGH)."""
    from importlib import import_module

    module = import_module(f"harness.benchmarks.{facts.family}.facts")
    if TEST09 not in facts.compliance_tests or not hasattr(module, "TEST09_LOW"):
        raise ConfigError(f"{facts.name} has no TEST09 (its compliance tests: {', '.join(facts.compliance_tests)})",
                          hint=f"run `compliance run {facts.compliance_tests[0]}` for {facts.name}")
    return float(module.TEST09_LOW), float(module.TEST09_HIGH)


def bounds_in(audit_text: str) -> tuple[float | None, float | None]:
    """(min, max) of an audit.config text, as the official parse_audit_config reads them (inline comments cut)."""
    def number(name: str) -> float | None:
        value = audit_value(audit_text, name, inline_comments=True)
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    return number(MIN_KEY), number(MAX_KEY)


@dataclass(frozen=True)
class Test09Result:
    """Output lengths of the logged answers and the verdict on their mean."""

    __test__ = False

    lengths: tuple[int, ...]
    low: float
    high: float
    undecodable: tuple[object, ...] = ()  # qsl_idx of entries whose data could not be decoded (counted 0)

    @property
    def mean(self) -> float:
        """The official ``sum(lengths) / len(lengths)``."""
        return sum(self.lengths) / len(self.lengths)

    @property
    def std_dev(self) -> float:
        """Population standard deviation, computed in the official order."""
        mean = self.mean
        return float((sum((x - mean) ** 2 for x in self.lengths) / len(self.lengths)) ** 0.5)

    @property
    def low_ok(self) -> bool:
        """mean >= the lower bound."""
        return self.mean >= self.low

    @property
    def high_ok(self) -> bool:
        """mean <= the upper bound."""
        return self.mean <= self.high

    @property
    def passed(self) -> bool:
        """Both bounds hold."""
        return self.low_ok and self.high_ok

    def render(self) -> str:
        """verify_output_len.txt, line for line as run_verification.py writes it."""
        mean = f"{self.mean:.2f}"
        lines = [RULE, TITLE, RULE, "",
                 "Output Token Length Statistics", THIN_RULE,
                 f"Total samples: {len(self.lengths)}", f"Mean output tokens: {mean}",
                 f"Min output tokens: {min(self.lengths)}", f"Max output tokens: {max(self.lengths)}",
                 f"Std deviation: {self.std_dev:.2f}", "",
                 RULE, "Verification Results", RULE,
                 f"Mean output tokens: {mean}", f"Min threshold: {self.low}", f"Max threshold: {self.high}",
                 f"Min check pass: {self.low_ok}", f"Max check pass: {self.high_ok}", "",
                 PASS_LINE if self.passed else FAIL_LINE]
        return "".join(line + "\n" for line in lines)


def token_count(entry: Any) -> tuple[int, bool]:
    """(output tokens of one entry, whether its data decoded); 0 for no data or undecodable data."""
    data = entry.get("data", "")
    if not data:
        return 0, True
    try:
        return len(bytes.fromhex(data.strip())) // 4, True
    except Exception:
        return 0, False


def verify_entries(entries: list[Any], low: float, high: float, source: str = "log") -> Test09Result:
    """Lengths and verdict for the parsed entries of an accuracy log."""
    if not entries:
        raise InputError(f"{source} has no entries; the official run_verification.py stops there and writes no "
                         f"{VERIFY_FILE}", hint="the audit run logs every sample: rerun `compliance run TEST09`")
    lengths, bad = [], []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"{source}: entry {position} is a JSON {type(entry).__name__}, not an object; the "
                             f"official run_verification.py crashes on it and writes no {VERIFY_FILE}")
        count, decoded = token_count(entry)
        lengths.append(count)
        if not decoded:
            bad.append(entry.get("qsl_idx"))
    return Test09Result(tuple(lengths), float(low), float(high), tuple(bad))


def load_entries(path: Path) -> list[Any]:
    """The entries of mlperf_log_accuracy.json as the official parse_mlperf_log finds them."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; expected the TEST09 run's mlperf_log_accuracy.json",
                         hint="pass the run directory of a `compliance run TEST09`")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path} cannot be read ({err})") from None
    try:
        whole = json.loads(text)
        if isinstance(whole, list):
            return whole
    except json.JSONDecodeError:
        pass
    return _entries_by_line(text)


def _entries_by_line(text: str) -> list[Any]:
    decoder = json.JSONDecoder()
    entries: list[Any] = []
    for raw in text.split("\n"):  # read_text's universal newlines, then the lines `for line in f` gives
        line = raw.strip()
        if not line:
            continue
        try:
            entries.append(json.loads(line))
            continue
        except json.JSONDecodeError:
            pass
        rest = line
        while rest := rest.lstrip():
            try:
                value, end = decoder.raw_decode(rest)
            except json.JSONDecodeError:
                break
            entries.append(value)
            rest = rest[end:]
    return entries


def verify_log(path: Path, low: float, high: float) -> Test09Result:
    """Verify one mlperf_log_accuracy.json."""
    return verify_entries(load_entries(path), low, high, source=str(path))
