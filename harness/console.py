"""Shared by the three CLIs: error-to-exit-code mapping, progress display and result tables."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness.errors import HarnessError, Interrupted, RunError
from harness.safe_paths import from_os_error
from harness.types import Check, CheckStatus

__all__ = ["Progress", "checks_table", "one_line", "report_error", "run_cli", "stderr", "stdout"]

stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)


def run_cli(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run a Typer app; HarnessError becomes 'error: ...' plus 'hint: ...' and its exit code."""
    try:
        code = app(args=list(argv) if argv is not None else None, standalone_mode=False)
    except HarnessError as err:
        report_error(err)
        return err.exit_code
    except KeyboardInterrupt:
        report_error(Interrupted("interrupted by the user"))
        return Interrupted.exit_code
    except SystemExit as exit_:
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 1
    except typer.Exit as exit_:
        return int(exit_.exit_code)
    except OSError as err:  # a file-system failure no command turned into a HarnessError: still one line
        converted = from_os_error(err, "access")
        report_error(converted)
        return converted.exit_code
    except Exception as err:  # click usage errors arrive here in non-standalone mode
        usage = _click_usage_error(err)
        if usage is not None:
            stderr.print(f"error: {usage}", markup=False)
            return 2
        if os.environ.get("HARNESS_TRACEBACK"):
            raise
        report_error(RunError(f"internal error: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                              hint="this is a bug in mlperf-llm-harness; HARNESS_TRACEBACK=1 shows the traceback "
                                   "(please report it)"))
        return RunError.exit_code
    if code == Interrupted.exit_code:  # typer turns a Ctrl-C inside a command into a silent return of 130
        report_error(Interrupted("interrupted by the user"))
    return code if isinstance(code, int) else 0


def _click_usage_error(err: Exception) -> str | None:
    """Usage errors of click or of the click copy vendored in typer (same duck type)."""
    if type(err).__name__ == "Abort":
        return "aborted"
    format_message = getattr(err, "format_message", None)
    if callable(format_message) and hasattr(err, "exit_code"):
        return str(format_message()) + "; see --help"
    return None


def one_line(text: str) -> str:
    """text with line breaks and other control characters escaped (a path may hold a newline)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def report_error(err: HarnessError) -> None:
    """Print a project error as one 'error:' line and an optional 'hint:' line on stderr."""
    stderr.print(f"error: {one_line(err.message)}", markup=False, soft_wrap=True)
    if err.hint:
        stderr.print(f"hint: {one_line(err.hint)}", markup=False, soft_wrap=True)


def checks_table(checks: Iterable[Check], title: str = "checks") -> Table:
    """A PASS/FAIL/WARN/MANUAL table of checks."""
    colours = {CheckStatus.PASS: "green", CheckStatus.FAIL: "red", CheckStatus.WARN: "yellow",
               CheckStatus.MANUAL: "cyan"}
    table = Table(title=title, show_lines=False)
    for column in ("status", "check", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        colour = colours[check.status]
        table.add_row(f"[{colour}]{check.status.value}[/{colour}]", check.name, check.detail, check.fix)
    return table


class Progress:
    """Samples done and tokens/s: a live bar on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, total: int, label: str, enabled: bool = True, interval_s: float = 5.0) -> None:
        self.total = total
        self.label = label
        self.enabled = enabled
        self.interval_s = interval_s
        self.done = 0
        self.tokens = 0
        self._extra: Callable[[], str] | None = None
        self._start = time.monotonic()
        self._last_print = 0.0
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.enabled and sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=stderr)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.label, total=self.total, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
        elif self.enabled:
            self._print_line(final=True)

    def set_extra(self, extra: Callable[[], str]) -> None:
        """A callback that adds text (e.g. per-replica throughput) to each update."""
        self._extra = extra

    def advance(self, samples: int = 1, tokens: int = 0) -> None:
        """Record finished samples and generated tokens (thread-safe enough for counters)."""
        self.done += samples
        self.tokens += tokens
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=self._rate_text())
        elif time.monotonic() - self._last_print >= self.interval_s:
            self._print_line()

    def _rate_text(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        text = f"{self.tokens / elapsed:,.1f} tokens/s"
        if self._extra is not None:
            text += f"  {self._extra()}"
        return text

    def _print_line(self, final: bool = False) -> None:
        self._last_print = time.monotonic()
        prefix = "done" if final else "progress"
        stderr.print(f"{prefix}: {self.label} {self.done}/{self.total} samples, {self._rate_text()}",
                     markup=False)
