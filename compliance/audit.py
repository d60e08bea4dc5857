"""What the audit tests share: the audit.config text, LoadGen's "I read it" line, the official output layout.

Pure (stdlib plus harness.artifacts/errors/safe_paths), so the packager and the pipeline can import it.

- ``render_audit_config``: the ``*.*.key = value`` lines of an audit.config, LoadGen settings first, then the
  verification thresholds LoadGen ignores (``test07_accuracy_threshold``, ``test09_min/max_output_tokens``).
- ``audit_value``: a key of an audit.config read the way MLCommons' TEST07/TEST09 ``run_verification.py``
  ``parse_audit_config`` reads it (comments and blank lines skipped, ``key = value`` split at the first ``=``,
  the setting name is the last dot-separated part of a key with at least three parts; TEST09 also drops an
  inline ``# comment`` from the value), last occurrence wins.
- ``write_official_outputs``: the directory run_verification.py ``-o OUT`` fills for TEST07 and TEST09:
  ``OUT/<TEST>/<verify file>``, ``accuracy/mlperf_log_accuracy.json`` and, when the run has them,
  ``performance/run_1/mlperf_log_summary.txt`` and ``mlperf_log_detail.txt``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from harness import artifacts
from harness.artifacts import write_text_atomic
from harness.errors import ConfigError
from harness.safe_paths import copy_atomic

# LoadGen's warning when it applies an audit.config (loadgen.cc: "Found Audit Config file (audit.config)...").
AUDIT_WARNING = "Found Audit Config file"
# The official scripts' fixed audit seed (compliance/TEST06, TEST07 and TEST09 audit.config files).
AUDIT_LOG_SEED = 720381539243781796
ACCURACY_DIR = "accuracy"
PERFORMANCE_DIR = ("performance", "run_1")
ACCURACY_LOG = artifacts.ACCURACY_LOG


def render_audit_config(title: str, settings: Mapping[str, int], thresholds: Mapping[str, float] | None = None
                        ) -> str:
    """An audit.config: a comment line, LoadGen's settings, then the thresholds only the verification reads."""
    lines = [f"# {title}", *(f"*.*.{key} = {value}" for key, value in settings.items())]
    if thresholds:
        lines.append("# read by the verification, not by LoadGen")
        lines += [f"*.*.{key} = {value!r}" for key, value in thresholds.items()]
    return "\n".join(lines) + "\n"


def audit_value(text: str, name: str, inline_comments: bool = False) -> str | None:
    """The value of setting ``name`` in audit.config text, as run_verification.py's parse_audit_config finds it."""
    found = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if inline_comments and "#" in value:
            value = value.split("#", 1)[0].strip()
        parts = key.split(".")
        if len(parts) >= 3 and parts[-1] == name:
            found = value
    return found


def audit_applied(detail_log: Path) -> bool:
    """Whether LoadGen's detail log shows it read audit.config (raw text: some values span lines)."""
    return AUDIT_WARNING in detail_log.read_text(errors="replace")


def official_newlines(text: str) -> str:
    """Text as ``subprocess.Popen(..., text=True)`` hands it over: universal newlines (\\r\\n and \\r -> \\n)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def write_official_outputs(run_dir: Path, target: Path, verify_name: str, verify_text: str,
                           overwrite: bool = False) -> None:
    """Fill target (``OUT/<TEST>``) as run_verification.py does: the verify file, the accuracy log, the
    performance logs the run has. A result of a different accuracy log is replaced only with overwrite."""
    log = run_dir / ACCURACY_LOG
    copied = target / ACCURACY_DIR / ACCURACY_LOG
    if not overwrite and copied.is_file() and copied.read_bytes() != log.read_bytes():
        raise ConfigError(f"{target} already holds the {target.name} result of a different accuracy log",
                          hint="pass --output-dir elsewhere, or --overwrite to replace it")
    copy_atomic(log, copied)
    for name in (artifacts.SUMMARY, artifacts.DETAIL):
        if (run_dir / name).is_file():
            copy_atomic(run_dir / name, target.joinpath(*PERFORMANCE_DIR, name))
    write_text_atomic(target / verify_name, verify_text)
