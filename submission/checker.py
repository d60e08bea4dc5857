"""Run the official MLCommons submission checker from the user's checkout and judge its log strictly.

The tag script (tools/submission/submission_checker.py, v4.0-v5.1) or HEAD's module
(tools/submission/submission_checker/, `python -m submission_checker.main`) is run as a subprocess.
The round is always passed as `--version` (HEAD's module defaults to v5.1). A tree passes only when the log
says `SUMMARY: submission looks OK`, shows no traceback, and reports `Closed Results=` and `Open Results=` equal
to the number of scenario dirs packaged in closed/ and open/ with `NoResults=0`: an empty or misplaced tree
also "looks OK" (mlperf-rules.md §3.2, §10.1-§10.2).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import EnvironmentProblem, InputError
from harness.types import Check, CheckStatus
from submission.layout import DIVISIONS

__all__ = ["SUMMARY_OK", "OfficialVerdict", "official_command", "packaged_results", "packaged_scenarios",
           "parse_log", "run_official"]

SUMMARY_OK = "SUMMARY: submission looks OK"
_COUNTS = re.compile(r"Results=(\d+), NoResults=(\d+)")
_OPEN = re.compile(r"Open Results=(\d+)")
_CLOSED = re.compile(r"Closed Results=(\d+)")
_ERROR = re.compile(r"^\[[^\]]* ERROR\] (.*)$")
TIMEOUT_S = 1800


@dataclass
class OfficialVerdict:
    """What the official checker said, and whether that counts as a pass."""

    command: list[str]
    returncode: int
    log: str
    expected_results: int  # open
    expected_closed: int = 0
    summary_ok: bool = False
    open_results: int | None = None
    closed_results: int | None = None
    no_results: int | None = None
    crashed: bool = False
    crashed_on_version: bool = False
    errors: list[str] = field(default_factory=list)

    def known_problem(self) -> str | None:
        """A failure of the checker itself that no tree can avoid, explained; None when there is none."""
        if self.crashed_on_version:
            return ("this checker has no result tables for the round (the v6.0.0pre tag's script raises "
                    "KeyError 'v6.0' in check_performance_dir for every tree): run the checker of master "
                    "(tools/submission/submission_checker/), which defines the v6.0 layout")
        return None

    @property
    def passed(self) -> bool:
        """OK summary, no crash, the expected number of closed and open results, no NoResults."""
        counted = self.open_results is not None or self.closed_results is not None
        return (self.returncode == 0 and self.summary_ok and not self.crashed and counted
                and (self.open_results or 0) == self.expected_results
                and (self.closed_results or 0) == self.expected_closed and self.no_results == 0)

    def checks(self) -> list[Check]:
        """The verdict as checks: each logged ERROR, then the summary judgement."""
        # An ERROR line of a passing run (the tag scripts log some for open results they accept) is a warning.
        status = CheckStatus.WARN if self.passed else CheckStatus.FAIL
        found = [Check("official", status, line, "", "") for line in self.errors]
        closed = (f"Closed Results={self.closed_results} (expected {self.expected_closed}), "
                  if self.expected_closed or self.closed_results else "")
        detail = (f"rc={self.returncode}, summary {'OK' if self.summary_ok else 'not OK'}, {closed}"
                  f"Open Results={self.open_results} (expected {self.expected_results}), "
                  f"NoResults={self.no_results}{', crashed (Traceback)' if self.crashed else ''}")
        fix = "" if self.passed else (self.known_problem() or
                                      "read the ERROR lines; `submission check` explains each rule")
        found.append(Check("official-summary", CheckStatus.PASS if self.passed else CheckStatus.FAIL, detail, fix))
        return found


def parse_log(log: str, returncode: int, expected: int, command: list[str], expected_closed: int = 0
              ) -> OfficialVerdict:
    """Read the checker's combined output into a verdict (expected: open results; expected_closed: closed)."""
    verdict = OfficialVerdict(command, returncode, log, expected, expected_closed)
    verdict.summary_ok = any(line.rstrip().endswith(SUMMARY_OK) for line in log.splitlines())
    verdict.crashed = "Traceback (most recent call last)" in log
    round_name = command[command.index("--version") + 1] if "--version" in command else ""
    verdict.crashed_on_version = bool(round_name) and (
        f"caused exception in check_performance_dir: '{round_name}'" in log)
    counts = _COUNTS.search(log)
    if counts:
        verdict.no_results = int(counts.group(2))
    opened = _OPEN.search(log)
    if opened:
        verdict.open_results = int(opened.group(1))
    closed = _CLOSED.search(log)
    if closed:
        verdict.closed_results = int(closed.group(1))
    verdict.errors = [m.group(1) for line in log.splitlines() if (m := _ERROR.match(line))
                      and "SUMMARY" not in m.group(1)]
    return verdict


def official_command(checkout: Path, root: Path, round_name: str, submitter: str, csv: Path
                     ) -> tuple[list[str], Path]:
    """The command line and working directory that run the checker of this checkout."""
    checkout = checkout.resolve()  # the command runs from inside the checkout: a relative path would be joined twice
    tools = checkout / "tools" / "submission"
    args = ["--input", str(root.resolve()), "--version", round_name, "--submitter", submitter,
            "--csv", str(csv)]
    if (tools / "submission_checker.py").is_file():
        return [sys.executable, str(tools / "submission_checker.py"), *args], checkout
    if (tools / "submission_checker" / "main.py").is_file():
        return [sys.executable, "-m", "submission_checker.main", *args], tools
    raise InputError(f"--official {checkout} is not a checkout of mlcommons/inference: neither "
                     "tools/submission/submission_checker.py nor tools/submission/submission_checker/ exists",
                     hint="git clone https://github.com/mlcommons/inference and check out the round's tag")


def packaged_results(root: Path) -> tuple[str, dict[str, int]]:
    """The single submitter (one name, under open/ and/or closed/) and its results/<sys>/<bench>/<scenario>
    dirs per division."""
    orgs = [p for d in DIVISIONS if (root / d).is_dir() for p in sorted((root / d).glob("*")) if p.is_dir()]
    names = sorted({p.name for p in orgs})
    if len(names) != 1:
        raise InputError(f"{root} holds {len(names)} submitter dirs under {' and '.join(DIVISIONS)} "
                         f"({', '.join(names) or 'none'}); expected exactly one",
                         hint="pass the root written by `submission package`")
    counts = {d: 0 for d in DIVISIONS}
    for org in orgs:
        counts[org.parent.name] += sum(1 for p in (org / "results").glob("*/*/*") if p.is_dir())
    return names[0], counts


def packaged_scenarios(root: Path) -> tuple[str, int]:
    """The single submitter and its number of results/<sys>/<bench>/<scenario> dirs (all divisions)."""
    submitter, counts = packaged_results(root)
    return submitter, sum(counts.values())


def run_official(root: Path, round_name: str, checkout: Path) -> OfficialVerdict:
    """Run the official checker of the checkout on root (always with --version ROUND) and judge its output."""
    submitter, expected = packaged_results(root)
    with tempfile.TemporaryDirectory(prefix="submission-check-") as scratch:
        command, cwd = official_command(checkout, root, round_name, submitter, Path(scratch) / "summary.csv")
        try:
            proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise EnvironmentProblem(f"the official checker could not run: {err}",
                                     hint="check the --official checkout and its Python dependencies") from None
    return parse_log(proc.stdout + proc.stderr, proc.returncode, expected["open"], command, expected["closed"])
