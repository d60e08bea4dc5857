"""Findings of `submission check`: each rule fails for the checker families that fail on it, warns elsewhere.

A rule may also depend on the division of the submitter being checked (`Findings.division`): the closed
division's rules (accuracy targets, TEST06, required scenarios, ...) fail in every family, and warn in open.

Families: "v4" (the v4.0/v4.1 tag scripts), "v5" (v5.0/v5.1 tag scripts) and "head" (the modular
checker at HEAD, which checks v6.0 and v6.1). A rule that the official checker of the round does not enforce
is still reported, as a WARN, so a tree meets the strictest union (mlperf-rules.md §10.19).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.rounds import round_spec
from harness.types import Check, CheckStatus

ALL = frozenset({"v4", "v5", "head"})
TAG_SCRIPTS = frozenset({"v4", "v5"})


def family(round_name: str) -> str:
    """The checker family that judges a round."""
    return round_spec(round_name).checker_family


@dataclass
class Findings:
    """Collects checks for one round; paths are shown relative to the submission root."""

    root: Path
    round: str
    checks: list[Check] = field(default_factory=list)
    division: str = "open"  # of the submitter directory being checked (check_tree sets it per submitter)

    @property
    def family(self) -> str:
        """The checker family of the round."""
        return family(self.round)

    @property
    def closed(self) -> bool:
        """Whether the submitter being checked is in closed/ (closed rules apply)."""
        return self.division == "closed"

    def unless_open(self, in_open: frozenset[str] = frozenset()) -> frozenset[str]:
        """The families that fail a closed-division rule: all of them in closed, `in_open` in open."""
        return ALL if self.closed else in_open

    def add(self, rule: str, path: Path | str, detail: str, fix: str, fails_in: frozenset[str] = ALL) -> None:
        """Record a problem: FAIL where the round's checker fails on it, WARN otherwise."""
        status = CheckStatus.FAIL if self.family in fails_in else CheckStatus.WARN
        self.checks.append(Check(rule, status, detail, fix, self._rel(path)))

    def passed(self, rule: str, path: Path | str, detail: str = "") -> None:
        """Record a check that passed."""
        self.checks.append(Check(rule, CheckStatus.PASS, detail, "", self._rel(path)))

    def _rel(self, path: Path | str) -> str:
        path = Path(path)
        try:
            return str(path.relative_to(self.root)) or "."
        except ValueError:
            return str(path)

    def failed_under(self, prefix: Path) -> bool:
        """Whether any FAIL was recorded at or below prefix."""
        rel = self._rel(prefix)
        return any(c.failed and (c.path == rel or c.path.startswith(rel + "/")) for c in self.checks)
