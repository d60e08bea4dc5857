"""Llama 2 70B's dataset: the MLCommons processed OpenOrca pickle (tok_input ids, output text), validated as data.

Read through the restricted unpickler (harness.benchmarks.pickles); every row is checked (prompt ids non-negative
integers, the reference answer text) with one-line errors naming the file, the sample and the column.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from harness.benchmarks.llama2_70b.facts import DATASET_FILE
from harness.benchmarks.pickles import read_dataframe_pickle, read_file_bytes
from harness.errors import InputError

__all__ = ["REQUIRED_COLUMNS", "dataset_bytes", "read_openorca_pickle", "read_rows", "reference_texts"]

REQUIRED_COLUMNS = ("tok_input", "output")
_WHAT = "OpenOrca"


def read_openorca_pickle(path: Path) -> Any:
    """Read the processed OpenOrca DataFrame without letting the pickle run code."""
    return read_dataframe_pickle(path, _WHAT, DATASET_FILE, REQUIRED_COLUMNS)


def dataset_bytes(path: Path) -> bytes:
    """The file's bytes (for its sha256)."""
    return read_file_bytes(path, _WHAT, DATASET_FILE)


def read_rows(path: Path, count: int | None) -> tuple[list[tuple[int, ...]], list[str]]:
    """Prompt ids and reference answers of the first `count` rows (None: all), in qsl_idx order."""
    frame = read_openorca_pickle(path)
    count = len(frame) if count is None else min(count, len(frame))
    outputs = reference_texts(path, list(frame["output"])[:count])
    return [_prompt_ids(path, i, ids) for i, ids in enumerate(list(frame["tok_input"])[:count])], outputs


def reference_texts(path: Path, outputs: list[Any]) -> list[str]:
    """The output column: one string per sample (a None or a number is never a reference answer)."""
    for index, value in enumerate(outputs):
        if not isinstance(value, str):
            raise InputError(f"{path}: sample {index} has output {value!r} ({type(value).__name__}); expected the "
                             "reference answer as text", hint="fix or drop that row; ROUGE scores text only")
    return [str(v) for v in outputs]


def _prompt_ids(path: Path, index: int, ids: Any) -> tuple[int, ...]:
    """tok_input of one sample: a non-empty sequence of non-negative integers."""
    where = f"{path}: sample {index} (row {index} of tok_input)"
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise InputError(f"{where} is {type(ids).__name__} {str(ids)[:40]!r}; expected a list of token ids")
    values = list(ids)
    bad = next((v for v in values if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0), None)
    if bad is not None:
        raise InputError(f"{where} holds {bad!r} ({type(bad).__name__}); expected non-negative integer token ids")
    if not values:
        raise InputError(f"{where} is empty; every prompt needs at least one token")
    return tuple(int(v) for v in values)
