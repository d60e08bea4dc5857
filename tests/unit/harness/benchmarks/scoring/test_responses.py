"""Reading mlperf_log_accuracy.json: first occurrence wins, dtypes, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.benchmarks.scoring.responses import read_responses
from harness.errors import ConfigError, InputError
from tests.unit.harness.benchmarks.conftest import write_log


def _entries(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_first_occurrence_wins_and_duplicates_are_not_decoded(tmp_path: Path) -> None:
    log = _entries(tmp_path / "log.json", [
        {"seq_id": 0, "qsl_idx": 2, "data": np.asarray([5, 6, 2], "<i4").tobytes().hex()},
        {"seq_id": 1, "qsl_idx": 2, "data": "not hex at all"},
        {"seq_id": 2, "qsl_idx": 0, "data": np.asarray([7, 2], "<i4").tobytes().hex().upper()},
    ])
    responses = read_responses(log, "int32", dataset_size=3)
    assert responses.qsl_idx == [2, 0]
    assert responses.tokens == [[5, 6, 2], [7, 2]]
    assert (responses.duplicates, responses.gen_tok_len) == (1, 5)


@pytest.mark.parametrize(("dtype", "numpy_dtype"), [("int64", "<i8"), ("float32", "<f4"), ("float", "<f4")])
def test_other_dtypes(tmp_path: Path, dtype: str, numpy_dtype: str) -> None:
    log = write_log(tmp_path / "log.json", [(0, [11, 12, 2])], dtype=numpy_dtype)
    assert read_responses(log, dtype, dataset_size=1).tokens == [[11, 12, 2]]


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"),
    ("[]", "holds no entries"),
    ('[{"seq_id": 0, "qsl_idx": 0, "data": "0200', "not valid JSON"),
    ('{"qsl_idx": 0}', "expected a JSON list"),
    ('[{"seq_id": 0, "data": "02000000"}]', "entry 0 lacks or mangles a field"),
])
def test_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        read_responses(log, "int32", dataset_size=4)
    assert str(log) in err.value.message and "\n" not in err.value.message


@pytest.mark.parametrize(("entry", "message"), [
    ({"seq_id": 0, "qsl_idx": 1, "data": "0G000000"}, r"entry 1 \(qsl_idx 1\): data is not hexadecimal"),
    ({"seq_id": 0, "qsl_idx": 1, "data": "020000"}, "3 bytes is not a multiple of 4"),
    ({"seq_id": 0, "qsl_idx": 9, "data": "02000000"}, r"qsl_idx is not in the dataset, which has samples 0\.\.3"),
    ({"seq_id": 0, "qsl_idx": -1, "data": "02000000"}, "qsl_idx is not in the dataset"),
    ({"seq_id": 0, "qsl_idx": 1, "data": "FFFFFF7F"}, "token id 2147483647 is outside the tokenizer's vocabulary"),
])
def test_bad_entries_name_the_entry(tmp_path: Path, entry: dict[str, object], message: str) -> None:
    good = {"seq_id": 0, "qsl_idx": 0, "data": "02000000"}
    log = _entries(tmp_path / "log.json", [good, entry])
    with pytest.raises(InputError, match=message):
        read_responses(log, "int32", dataset_size=4, vocab_size=49152)


def test_non_finite_float_and_unknown_dtype(tmp_path: Path) -> None:
    log = write_log(tmp_path / "log.json", [(0, [np.nan])], dtype="<f4")
    with pytest.raises(InputError, match="NaN or infinity"):
        read_responses(log, "float32", dataset_size=1)
    with pytest.raises(ConfigError, match="unknown response dtype 'int8'"):
        read_responses(log, "int8", dataset_size=1)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_responses(tmp_path / "absent.json", "int32", dataset_size=1)
