"""Project exceptions: every user-facing failure, each with its exit code and a fix hint.

    HarnessError                 exit code on the class; message = what, value seen, expected
    ├── CheckFailed (1)          a run/check/compliance verdict is negative
    ├── ConfigError (2)          bad config key, value or CLI flag
    ├── InputError (2)           a data file (dataset, log, system JSON) is malformed
    ├── EnvironmentProblem (3)   missing dependency, wrong LoadGen for the round, no GPU...
    │   └── PreflightError (3)
    ├── RunError (4)             the run itself failed (LoadGen refused, worker died)
    │   └── BackendError (4)     a backend failed to start or to generate
    └── Interrupted (130)        the user pressed Ctrl-C
"""

from __future__ import annotations

__all__ = ["BackendError", "CheckFailed", "ConfigError", "EnvironmentProblem", "HarnessError", "InputError",
           "Interrupted", "PreflightError", "RunError"]


class HarnessError(Exception):
    """Base of all project errors; carries the process exit code and a one-line fix."""

    exit_code: int = 4

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class CheckFailed(HarnessError):
    """A verdict is negative: invalid run, failed check, failed compliance test."""

    exit_code = 1


class ConfigError(HarnessError):
    """A configuration key, value or command-line flag is wrong."""

    exit_code = 2


class InputError(HarnessError):
    """An input file is missing or malformed."""

    exit_code = 2


class EnvironmentProblem(HarnessError):
    """The machine lacks something the run needs (package, version, device)."""

    exit_code = 3


class PreflightError(EnvironmentProblem):
    """A preflight check found the cluster unfit for the run."""


class RunError(HarnessError):
    """The run started but failed."""

    exit_code = 4


class BackendError(RunError):
    """A backend failed to load or to generate."""


class Interrupted(HarnessError):
    """The user interrupted the run."""

    exit_code = 130
