"""Console rendering of audit results: TEST06 (the official four lines, a check table, the failing samples),
TEST07 and TEST09 (the verdict lines of the official file)."""

from __future__ import annotations

from compliance.results import ComplianceResult
from compliance.verify import AuditVerification
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


def render_audit(verification: AuditVerification) -> None:
    """TEST07/TEST09: the verdict lines of the written file (stdout), warnings and where it went (stderr)."""
    lines = verification.text.splitlines()
    if verification.test == "TEST07":  # the scorer's own output stays in the file; the summary block is the verdict
        marker = "TEST07 Verification Summary"
        lines = lines[max(0, lines.index(marker) - 1) if marker in lines else 0:]
    for line in lines:
        stdout.print(line, markup=False, soft_wrap=True)
    for warning in verification.warnings:
        stderr.print(f"warning: {warning}", markup=False, soft_wrap=True)
    stderr.print(f"wrote {verification.verify_file}", markup=False)


def raise_if_audit_failed(verification: AuditVerification) -> None:
    """A failed TEST07/TEST09 becomes CheckFailed (exit code 1) with the numbers and the likely cause."""
    if verification.passed:
        return
    d = verification.details
    if verification.test == "TEST07":
        if d.get("score") is None:
            raise CheckFailed("TEST07 failed: no accuracy score in the scorer's output",
                              hint="check that the run scored (its accuracy text must hold 'exact_match': <score>)")
        raise CheckFailed(f"TEST07 failed: accuracy {d['score']} is below the threshold {d['threshold']}",
                          hint="the performance-mode answers are less accurate than the accuracy run's: check that "
                               "the performance configuration (quantization, batching, caching) answers correctly")
    raise CheckFailed(f"TEST09 failed: mean output tokens {d['mean_output_tokens']} outside "
                      f"[{d['low']}, {d['high']}]",
                      hint="the SUT truncates (below) or pads/repeats (above) its answers in performance mode: check "
                           "the output cap (10,240 tokens for gpt-oss-120b performance runs) and stop tokens")
