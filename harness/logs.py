"""Parsers for LoadGen's logs: mlperf_log_detail.txt (:::MLLOG lines) and mlperf_log_accuracy.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.safe_paths import not_there

__all__ = ["AccuracyEntry", "DetailLog", "LogMessage", "parse_accuracy_log", "parse_detail_log"]

_MARKER = ":::MLLOG"


@dataclass(frozen=True)
class LogMessage:
    """One :::MLLOG record."""

    key: str
    value: Any
    is_error: bool
    is_warning: bool


@dataclass
class DetailLog:
    """mlperf_log_detail.txt with the checker's semantics: log[key] is the first occurrence."""

    messages: list[LogMessage] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        for message in self.messages:
            if message.key == key:
                return message.value
        return None

    def get(self, key: str, default: Any = None) -> Any:
        """First value of key, or default when absent."""
        value = self[key]
        return default if value is None else value

    @property
    def errors(self) -> list[LogMessage]:
        """Messages LoadGen flagged as errors."""
        return [m for m in self.messages if m.is_error]

    @property
    def warnings(self) -> list[LogMessage]:
        """Messages LoadGen flagged as warnings."""
        return [m for m in self.messages if m.is_warning]

    def num_errors(self) -> int:
        """Error count; a logged num_errors key (v5.1+) wins, as in the checker."""
        logged = self["num_errors"]
        return int(logged) if logged is not None else len(self.errors)


def _records(path: Path) -> list[tuple[int, str]]:
    """(line number, JSON text) per :::MLLOG record. LoadGen writes some string values (e.g.
    result_invalid_reason) with raw newlines, so lines that do not start a record continue the previous one."""
    records: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if line.startswith(_MARKER):
            records.append((number, line[len(_MARKER):]))
        elif records and not _complete(records[-1][1]):
            records[-1] = (records[-1][0], records[-1][1] + "\n" + line)
    return records


def _complete(text: str) -> bool:
    try:
        json.loads(text, strict=False)
    except json.JSONDecodeError:
        return False
    return True


def parse_detail_log(path: Path) -> DetailLog:
    """Parse every :::MLLOG line strictly; a malformed line is an InputError naming the line."""
    if not path.is_file():
        raise InputError(f"{path} does not exist; expected LoadGen's mlperf_log_detail.txt")
    log = DetailLog()
    for number, text in _records(path):
        try:
            record = json.loads(text, strict=False)  # raw newlines inside strings (LoadGen)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}: malformed :::MLLOG line ({err.msg})") from None
        meta = record.get("metadata") or {}
        log.messages.append(
            LogMessage(
                key=str(record.get("key")),
                value=record.get("value"),
                is_error=bool(meta.get("is_error", False)),
                is_warning=bool(meta.get("is_warning", False)),
            )
        )
    return log


@dataclass(frozen=True)
class AccuracyEntry:
    """One entry of mlperf_log_accuracy.json."""

    seq_id: int
    qsl_idx: int
    data: str
    token_count: int | None = None
    token_data: str | None = None


def _require_types(path: Path, position: int, item: dict[str, Any]) -> None:
    """LoadGen writes seq_id/qsl_idx/token_count as JSON integers and data as a hex string; nothing else is read
    (a "3" or 1.5 qsl_idx would otherwise be scored as sample 3 or 1)."""
    for key in ("seq_id", "qsl_idx", "token_count"):
        value = item.get(key)
        if key not in item or (key == "token_count" and value is None):
            continue  # a missing field is reported below; token_count is optional
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{path}: entry {position} has {key} {value!r} ({type(value).__name__}); expected a "
                             "JSON integer", hint="the log is corrupt or not written by LoadGen")
    if "data" in item and not isinstance(item["data"], str):
        raise InputError(f"{path}: entry {position} has data {item['data']!r}; expected a hex string")


def parse_accuracy_log(path: Path) -> list[AccuracyEntry]:
    """Read mlperf_log_accuracy.json; a missing, empty or truncated file is an InputError."""
    if not path.is_file():
        raise InputError(not_there(path, "LoadGen's mlperf_log_accuracy.json"))
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path} is not text; expected LoadGen's mlperf_log_accuracy.json") from None
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    if not text.strip():
        raise InputError(f"{path} is empty; expected a JSON list of accuracy entries",
                         hint="was the run an accuracy-mode run that finished?")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{path} is not valid JSON at line {err.lineno} column {err.colno} ({err.msg}); "
            "the log may be truncated (a truncated submission log cannot be scored)",
            hint="score the original, untruncated mlperf_log_accuracy.json",
        ) from None
    if not isinstance(raw, list):
        raise InputError(f"{path} holds a {type(raw).__name__}; expected a JSON list")
    entries = []
    for position, item in enumerate(raw):
        if isinstance(item, dict):
            _require_types(path, position, item)
        try:
            entries.append(
                AccuracyEntry(
                    seq_id=int(item["seq_id"]),
                    qsl_idx=int(item["qsl_idx"]),
                    data=str(item["data"]),
                    token_count=None if item.get("token_count") is None else int(item["token_count"]),
                    token_data=item.get("token_data"),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(f"{path}: entry {position} lacks or mangles a field ({err!r}); "
                             "expected seq_id, qsl_idx and data") from None
    return entries
