"""TEST06 results as data: the three verdicts, the official four-line text, and reading a stored result.

Pure (stdlib plus harness.types/errors): the packager imports this module on a login node to copy a
compliance run's ``TEST06/`` directory into the submission tree and to ask whether it passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import artifacts
from harness.errors import InputError
from harness.safe_paths import contained, read_contained
from harness.types import Check, CheckStatus

TEST06 = "TEST06"
VERIFY_FILE = "verify_accuracy.txt"
ACCURACY_DIR = "accuracy"
ACCURACY_LOG = artifacts.ACCURACY_LOG  # the file name has one definition (harness.artifacts)

FIRST_TOKEN = "First token check"
EOS = "EOS check"
SAMPLE_LENGTH = "Sample length check"
COMPLETE_LINE = "TEST06 verification complete"
FAILED_LINE = "TEST06 verification failed"


@dataclass(frozen=True)
class Test06Verdict:
    """The three verdicts of run_verification.py; first_token is None when skipped (Offline)."""

    __test__ = False  # not a pytest test class

    first_token: bool | None
    eos: bool
    sample_length: bool

    @property
    def passed(self) -> bool:
        """True when no check failed (a skipped first-token check counts as passed)."""
        return self.first_token is not False and self.eos and self.sample_length

    def lines(self) -> list[str]:
        """The four lines of verify_accuracy.txt, exactly as the official script writes them."""
        first = "Skipped" if self.first_token is None else str(self.first_token)
        return [
            f"{FIRST_TOKEN} pass: {first}",
            f"{EOS} pass: {self.eos}",
            f"{SAMPLE_LENGTH} pass: {self.sample_length}",
            COMPLETE_LINE if self.passed else FAILED_LINE,
        ]

    def render(self) -> str:
        """verify_accuracy.txt's content: the four lines, each ending in a newline."""
        return "".join(line + "\n" for line in self.lines())


@dataclass(frozen=True)
class SampleFinding:
    """One sample that fails a check: where it is in the log, the offending tokens, and why."""

    check: str
    qsl_idx: object
    seq_id: object
    position: int
    tokens: tuple[float | int, ...]
    reason: str

    def describe(self) -> str:
        """One line naming the sample and what is wrong with it."""
        shown = ", ".join(str(t) for t in self.tokens)
        where = f"qsl_idx {self.qsl_idx} (entry {self.position}, seq_id {self.seq_id})"
        return f"{where}: {self.reason}" + (f" [tokens: {shown}]" if self.tokens else "")


@dataclass(frozen=True)
class ComplianceResult:
    """The outcome of verifying one TEST06 accuracy log."""

    test: str
    verdict: Test06Verdict
    findings: tuple[SampleFinding, ...] = ()
    causes: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    sample_count: int = 0
    settings: str = ""

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return self.verdict.passed

    def checks(self) -> list[Check]:
        """One PASS/FAIL row per check (plus WARN rows), for a console table."""
        rows = []
        for name, value in ((FIRST_TOKEN, self.verdict.first_token), (EOS, self.verdict.eos),
                            (SAMPLE_LENGTH, self.verdict.sample_length)):
            failing = [f for f in self.findings if f.check == name]
            if value is None:
                rows.append(Check(name, CheckStatus.PASS, "skipped (Offline: no first-token report)"))
            elif value:
                rows.append(Check(name, CheckStatus.PASS, f"{self.sample_count} samples"))
            else:
                detail = f"{len(failing)} of {self.sample_count} samples fail; first: "
                detail += failing[0].describe() if failing else "(none recorded)"
                rows.append(Check(name, CheckStatus.FAIL, detail, self.causes.get(name, "")))
        rows.extend(Check("warning", CheckStatus.WARN, text) for text in self.warnings)
        return rows


@dataclass(frozen=True)
class StoredTest06:
    """A TEST06 result as written on disk: what the packager copies and whether the checker passes it."""

    directory: Path
    lines: tuple[str, ...]
    passed: bool

    @property
    def verify_file(self) -> Path:
        """TEST06/verify_accuracy.txt."""
        return self.directory / VERIFY_FILE

    @property
    def accuracy_log(self) -> Path:
        """TEST06/accuracy/mlperf_log_accuracy.json."""
        return self.directory / ACCURACY_DIR / ACCURACY_LOG


def checker_passes(lines: list[str] | tuple[str, ...]) -> bool:
    """The submission checker's reading of verify_accuracy.txt (stripped lines, three required)."""
    stripped = {line.strip() for line in lines}
    first_ok = f"{FIRST_TOKEN} pass: True" in stripped or f"{FIRST_TOKEN} pass: Skipped" in stripped
    return first_ok and f"{EOS} pass: True" in stripped and f"{SAMPLE_LENGTH} pass: True" in stripped


def read_test06(path: Path) -> StoredTest06:
    """Read a stored TEST06 result from a run directory, or from its (or any) TEST06 directory.

    ``passed`` uses the submission checker's semantics; both files the packager copies must exist.
    """
    directory = Path(path)
    root = directory.parent if directory.name == TEST06 else directory  # the run directory the files belong to
    if directory.name != TEST06:
        directory = directory / TEST06
    verify = directory / VERIFY_FILE
    if not verify.is_file():
        raise InputError(f"{verify} does not exist; expected the TEST06 verification result",
                         hint="run `compliance verify TEST06 RUN_DIR` (or `compliance run TEST06`) first")
    log = directory / ACCURACY_DIR / ACCURACY_LOG
    if not log.is_file():
        raise InputError(f"{log} does not exist; a TEST06 result needs the audit run's accuracy log",
                         hint="re-run `compliance verify TEST06 RUN_DIR`, which copies it there")
    contained(root, log.relative_to(root))  # relative to root: a relative run directory is not joined twice
    lines = tuple(read_contained(root, verify.relative_to(root)).splitlines())
    return StoredTest06(directory, lines, checker_passes(lines))


# --- every audit test: where its result lies and how the submission checker reads it ------------------------

TEST07, TEST09 = "TEST07", "TEST09"
VERIFY_FILES = {TEST06: VERIFY_FILE, TEST07: VERIFY_FILE, TEST09: "verify_output_len.txt"}
PERFORMANCE_RUN = ("performance", "run_1")
TEST_PASS = "TEST PASS"


def verify_file_name(test: str) -> str:
    """The verification file of a test (TEST09 writes verify_output_len.txt, the others verify_accuracy.txt)."""
    try:
        return VERIFY_FILES[test]
    except KeyError:
        raise InputError(f"audit test {test!r} is not known; expected one of {', '.join(VERIFY_FILES)}") from None


def result_passes(test: str, text: str) -> bool:
    """The submission checker's verdict on a verification file (compliance_check.py): TEST06's three lines;
    TEST07 and TEST09: 'TEST PASS' anywhere in the file."""
    if test == TEST06:
        return checker_passes(text.splitlines())
    return TEST_PASS in text


@dataclass(frozen=True)
class StoredResult:
    """A verified audit test as written on disk (``<run>/<TEST>/``): the files the packager copies, the verdict."""

    test: str
    directory: Path
    lines: tuple[str, ...]
    passed: bool

    @property
    def verify_file(self) -> Path:
        """<TEST>/verify_accuracy.txt or verify_output_len.txt."""
        return self.directory / verify_file_name(self.test)

    def files(self) -> list[str]:
        """The files under <TEST>/ to package, relative to it: the verify file, the accuracy log, and (TEST07,
        TEST09) the performance logs run_verification.py copies into performance/run_1/ when the run has them."""
        found = [verify_file_name(self.test), f"{ACCURACY_DIR}/{ACCURACY_LOG}"]
        if self.test != TEST06:
            found += ["/".join((*PERFORMANCE_RUN, name)) for name in (artifacts.SUMMARY, artifacts.DETAIL)
                      if self.directory.joinpath(*PERFORMANCE_RUN, name).is_file()]
        return found


def read_result(path: Path, test: str) -> StoredResult:
    """Read a stored result of any audit test from a run directory (or its <TEST> directory)."""
    directory = Path(path)
    root = directory.parent if directory.name == test else directory
    if directory.name != test:
        directory = directory / test
    name = verify_file_name(test)
    verify = directory / name
    if not verify.is_file():
        raise InputError(f"{verify} does not exist; expected the {test} verification result",
                         hint=f"run `compliance verify {test} RUN_DIR` (or `compliance run {test}`) first")
    log = directory / ACCURACY_DIR / ACCURACY_LOG
    if not log.is_file():
        raise InputError(f"{log} does not exist; a {test} result needs the audit run's accuracy log",
                         hint=f"re-run `compliance verify {test} RUN_DIR`, which copies it there")
    contained(root, log.relative_to(root))
    text = read_contained(root, verify.relative_to(root))
    return StoredResult(test, directory, tuple(text.splitlines()), result_passes(test, text))
