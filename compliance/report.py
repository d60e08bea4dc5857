"""Console rendering of a TEST06 result: the official four lines, a check table, the failing samples."""

from __future__ import annotations

from compliance.results import ComplianceResult
from harness.console import checks_table, stderr, stdout
from harness.errors import CheckFailed

MAX_LISTED = 10


def render(result: ComplianceResult, written: str) -> None:
    """Print the four lines (stdout), then the table, failing samples and causes (stderr)."""
    for line in result.verdict.lines():
        stdout.print(line, markup=False)
    stderr.print(checks_table(result.checks(), title=f"TEST06 ({result.settings})"))
    by_check: dict[str, list[str]] = {}
    for finding in result.findings:
        by_check.setdefault(finding.check, []).append(finding.describe())
    for check, lines in by_check.items():
        stderr.print(f"{check} failed for {len(lines)} sample(s):", markup=False)
        for line in lines[:MAX_LISTED]:
            stderr.print(f"  {line}", markup=False, soft_wrap=True)
        if len(lines) > MAX_LISTED:
            stderr.print(f"  ... and {len(lines) - MAX_LISTED} more", markup=False)
        stderr.print(f"  likely cause: {result.causes.get(check, '')}", markup=False, soft_wrap=True)
    stderr.print(f"wrote {written}", markup=False)


def raise_if_failed(result: ComplianceResult) -> None:
    """A failed TEST06 becomes CheckFailed (exit code 1) naming the failing checks."""
    if result.passed:
        return
    failing = [line for line in result.verdict.lines()[:3] if line.endswith("False")]
    first = result.findings[0] if result.findings else None
    raise CheckFailed(
        "TEST06 failed: " + "; ".join(failing)
        + (f" (first failing sample: {first.describe()})" if first else ""),
        hint=result.causes.get(first.check) if first else None,
    )
