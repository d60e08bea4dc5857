"""Llama 3.1 8B's dataset: the MLCommons processed CNN/DailyMail JSON files (tok_input ids, output text), validated.

The files (`cnn_eval.json`, 13,368 rows; `sample_cnn_eval_5000.json`, edge; `cnn_dailymail_calibration.json`)
are one JSON array of objects, as language/llama3.1-8b/download_cnndm.py writes them: `input` (the article),
`tok_input` (the ids of the instruction prompt around it, tokenized once by MLCommons and used as they are, never
re-templated), `output` (the reference highlights). Every row used is checked, with one-line errors naming the file,
the row and the column. Also here: the project's own smoke set of invented news articles (SMOKE_FILE), prompted
with the reference's instruction in plain text (the reference prompt has no chat template).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from harness.benchmarks.llama3_1_8b.facts import CALIBRATION_FILE, DATASET_FILE, EDGE_DATASET_FILE
from harness.errors import InputError

__all__ = ["MAX_FILE_BYTES", "PROMPT_TEMPLATE", "REQUIRED_COLUMNS", "SMOKE_CHAT_TEMPLATE", "SMOKE_FILE", "SmokeArticle",
           "dataset_bytes", "read_calibration_prompts", "read_records", "read_rows", "smoke_entries"]

# The instruction language/llama3.1-8b/download_cnndm.py and prepare-calibration.py put around each article.
PROMPT_TEMPLATE = ("Summarize the following news article in 128 tokens. Please output the summary only, without any "
                   "other text.\n\nArticle:\n{input}\n\nSummary:")
REQUIRED_COLUMNS = ("tok_input", "output")
MAX_FILE_BYTES = 2 * 1024**3  # cnn_eval.json (indented, one id a line) is a few hundred MB
SMOKE_FILE = "data/smoke_cnn_dailymail.json"  # inside the harness package
SMOKE_CHAT_TEMPLATE = False  # the reference tokenizes the instruction prompt as plain text
_FILES = f"{DATASET_FILE} (datacenter), {EDGE_DATASET_FILE} (edge)"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a directory, a missing, unreadable or oversized file is a one-line InputError."""
    if path.is_dir():
        raise InputError(f"dataset {path} is a directory; expected the CNN/DailyMail JSON file inside it",
                         hint=f"set dataset.path to the .json file: {_FILES}")
    if not path.is_file():
        raise InputError(f"dataset {path} does not exist", hint=f"download {_FILES} (MLCommons) and set dataset.path")
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise InputError(f"dataset {path} is {size:,} bytes; a CNN/DailyMail JSON file is below "
                             f"{MAX_FILE_BYTES:,}", hint=f"set dataset.path to {_FILES}")
        return path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read dataset {path}: {err.strerror or err}",
                         hint="check the file's permissions and that its file system is mounted") from None


def dataset_bytes(path: Path) -> bytes:
    """The file's bytes (for its sha256)."""
    return _read_bytes(path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The file's rows: a JSON array of objects (each row checked to be an object; columns are checked by users)."""
    data = _read_bytes(path)
    if not data.strip():
        raise InputError(f"{path} is empty; expected a JSON array of CNN/DailyMail rows")
    if data[:1] == b"\x80":  # a pickle's protocol opcode (the Llama 2 set's format), never JSON
        raise InputError(f"{path} is a pickle; llama3.1-8b reads the MLCommons JSON files",
                         hint=f"set dataset.path to {_FILES}")
    try:
        rows = json.loads(data.decode("utf-8"))  # bytes would let json guess UTF-16/32
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start}); expected a JSON array") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}",
                         hint=f"download {_FILES} again (MLCommons); the file may be truncated") from None
    if not isinstance(rows, list):
        raise InputError(f"{path} holds {_json_kind(rows)}; expected an array of rows (objects with "
                         f"{' and '.join(REQUIRED_COLUMNS)})")
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {index} is {_json_kind(row)}; expected an object with "
                             f"{' and '.join(REQUIRED_COLUMNS)}")
    return rows


def read_rows(path: Path, count: int | None) -> tuple[list[tuple[int, ...]], list[str]]:
    """Prompt ids and reference summaries of the first `count` rows (None: all), in qsl_idx order."""
    rows = read_records(path)
    rows = rows if count is None else rows[:count]
    prompts = [_prompt_ids(path, index, _column(path, index, row, "tok_input")) for index, row in enumerate(rows)]
    outputs = [_text(path, index, _column(path, index, row, "output"), "output", "the reference summary")
               for index, row in enumerate(rows)]
    return prompts, outputs


def read_calibration_prompts(path: Path) -> list[str]:
    """The calibration file's prompts as text (the instruction around each `input` article), in file order.

    This is the text whose ids are the row's tok_input, which is what a quantizer tokenizes and calibrates on.
    """
    rows = read_records(path)
    if not rows:
        raise InputError(f"{path} has no rows; expected the 1,000-row {CALIBRATION_FILE}")
    articles = [_text(path, index, _column(path, index, row, "input"), "input", "the article")
                for index, row in enumerate(rows)]
    return [PROMPT_TEMPLATE.format(input=article) for article in articles]


def _json_kind(value: Any) -> str:
    """A JSON value as a reader of the file sees it: `null`, `the number 2.0`, `a string '1 2 3'`, `an array`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"a string {value[:40]!r}"
    return "an array" if isinstance(value, list) else "an object"


def _column(path: Path, index: int, row: dict[str, Any], column: str) -> Any:
    if column not in row:
        raise InputError(f"{path}: row {index} lacks column {column!r}; has {', '.join(map(str, row)) or 'none'}",
                         hint=f"use the MLCommons processed files ({_FILES}, {CALIBRATION_FILE})")
    return row[column]


def _text(path: Path, index: int, value: Any, column: str, what: str) -> str:
    """A text column: a non-empty string (a null or a number is never an article or a summary)."""
    if not isinstance(value, str):
        raise InputError(f"{path}: row {index}, column {column} is {_json_kind(value)}; expected {what} as text",
                         hint="fix or drop that row; ROUGE scores text only")
    if not value.strip():
        raise InputError(f"{path}: row {index}, column {column} is empty; expected {what}")
    return value


def _prompt_ids(path: Path, index: int, ids: Any) -> tuple[int, ...]:
    """tok_input of one row: a non-empty array of non-negative integers."""
    where = f"{path}: row {index}, column tok_input"
    if not isinstance(ids, list):
        raise InputError(f"{where} is {_json_kind(ids)}; expected an array of token ids")
    bad = next((v for v in ids if type(v) is not int or v < 0), None)  # JSON numbers: int, float (bool is apart)
    if bad is not None:
        raise InputError(f"{where} holds {_json_kind(bad)}; expected non-negative integer token ids")
    if not ids:
        raise InputError(f"{where} is empty; every prompt needs at least one token")
    return tuple(ids)


@dataclass(frozen=True)
class SmokeArticle:
    """One invented article of the smoke set and its reference summary; `question` is the reference's prompt."""

    id: str
    article: str
    output: str
    system_prompt: str = ""  # the reference prompt has no system turn

    @property
    def question(self) -> str:
        """The instruction prompt, exactly as the reference builds it around an article."""
        return PROMPT_TEMPLATE.format(input=self.article)


def smoke_entries() -> list[SmokeArticle]:
    """The project's own smoke set (harness/data/smoke_cnn_dailymail.json; its `licence` field is not data)."""
    raw = json.loads(resources.files("harness").joinpath(SMOKE_FILE).read_text(encoding="utf-8"))
    return [SmokeArticle(str(e["id"]), str(e["input"]), str(e["output"])) for e in raw["entries"]]
