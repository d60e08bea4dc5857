"""mlperf_log_accuracy.json -> the token buffers the reference scores (first occurrence of a qsl_idx wins).

Each entry's ``data`` is the hex of the response buffer LoadGen received; it is read as a little-endian
array of the given dtype. Every element counts towards gen_tok_len (EOS and padding included), as in
inference@v4.0 language/llama2-70b/evaluate-accuracy.py. Duplicate entries (a qsl_idx seen before)
are skipped without being decoded, as the reference skips them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import ConfigError, InputError
from harness.logs import parse_accuracy_log

DTYPES = {"int32": "<i4", "int64": "<i8", "float32": "<f4", "float": "<f4"}


@dataclass(frozen=True)
class Responses:
    """The unique responses of an accuracy log, in first-occurrence order."""

    qsl_idx: list[int]
    tokens: list[list[int]]
    duplicates: int

    @property
    def gen_tok_len(self) -> int:
        """Total elements in all scored buffers."""
        return sum(len(t) for t in self.tokens)


def check_dtype(dtype: str) -> np.dtype:
    """The numpy dtype for a --dtype name, else ConfigError."""
    if dtype not in DTYPES:
        raise ConfigError(f"unknown response dtype {dtype!r}; expected int32, int64 or float32",
                          hint="harness runs write int32 buffers; the reference script's default is int64")
    return np.dtype(DTYPES[dtype])


def read_responses(path: Path, dtype: str, dataset_size: int, vocab_size: int | None = None) -> Responses:
    """Read and validate the log; any malformed entry is an InputError naming it."""
    np_dtype = check_dtype(dtype)
    entries = parse_accuracy_log(path)
    if not entries:
        raise InputError(f"{path} holds no entries (an empty JSON list); nothing to score",
                         hint="score the mlperf_log_accuracy.json of an accuracy-mode run")
    seen: set[int] = set()
    order: list[int] = []
    tokens: list[list[int]] = []
    for position, entry in enumerate(entries):
        if entry.qsl_idx in seen:
            continue
        where = f"{path}: entry {position} (qsl_idx {entry.qsl_idx})"
        if not 0 <= entry.qsl_idx < dataset_size:
            raise InputError(f"{where}: qsl_idx is not in the dataset, which has samples 0..{dataset_size - 1}",
                             hint="score the log against the dataset the run used (--dataset)")
        seen.add(entry.qsl_idx)
        order.append(entry.qsl_idx)
        tokens.append(_token_ids(entry.data, np_dtype, where, vocab_size))
    return Responses(order, tokens, len(entries) - len(order))


def _token_ids(data: str, np_dtype: np.dtype, where: str, vocab_size: int | None) -> list[int]:
    try:
        raw = bytes.fromhex(data)
    except ValueError as err:
        raise InputError(f"{where}: data is not hexadecimal ({err}); seen {data[:40]!r}",
                         hint="the log is corrupt; rerun the accuracy test") from None
    if len(raw) % np_dtype.itemsize:
        raise InputError(f"{where}: {len(raw)} bytes is not a multiple of {np_dtype.itemsize} "
                         f"({np_dtype.name} buffers)", hint="pass the --dtype the SUT reported its responses in")
    values = np.frombuffer(raw, np_dtype)
    if np_dtype.kind == "f":
        if not np.isfinite(values).all():
            raise InputError(f"{where}: the float32 buffer holds a NaN or infinity",
                             hint="pass the --dtype the SUT reported its responses in")
        values = values.astype(np.int64)  # the reference's decoder applies int() to each id
    if values.size and vocab_size is not None and (values.min() < 0 or values.max() >= vocab_size):
        bad = int(values.min()) if values.min() < 0 else int(values.max())
        raise InputError(f"{where}: token id {bad} is outside the tokenizer's vocabulary 0..{vocab_size - 1}",
                         hint="pass the --dtype and --tokenizer the run used")
    return list(values.tolist())
