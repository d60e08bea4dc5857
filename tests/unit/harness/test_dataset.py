"""QSL loading: the restricted unpickler admits a real OpenOrca-schema DataFrame and refuses code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pandas as pd
import pytest

from harness.config import build_config
from harness.dataset import load_dataset, load_references, read_openorca_pickle, token_length_stats
from harness.errors import InputError


def _openorca_frame(n: int = 5) -> pd.DataFrame:
    """A DataFrame with the columns of open_orca_gpt4_tokenized_llama.sampled_24576.pkl."""
    return pd.DataFrame({
        "id": [f"cot.{i}" for i in range(n)],
        "system_prompt": ["You are a helpful assistant."] * n,
        "question": [f"Question {i}?" for i in range(n)],
        "output": [f"Answer number {i}." for i in range(n)],
        "input": [f"<s>[INST] Question {i}? [/INST]" for i in range(n)],
        "tok_input": [[1, 518, 25580, 29962, 100 + i, 29871] for i in range(n)],
        "tok_output": [[22550, 1353, 100 + i] for i in range(n)],
        "tok_input_length": [6] * n,
        "tok_output_length": [3] * n,
        "origin": ["cot"] * n,
    })


class _Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned > /tmp/harness-pwned",))


def test_real_dataframe_pickle_loads(tmp_path: Path) -> None:
    path = tmp_path / "orca.pkl"
    _openorca_frame().to_pickle(path)
    frame = read_openorca_pickle(path)
    assert list(frame["tok_input"][2]) == [1, 518, 25580, 29962, 102, 29871]
    assert load_references(str(path))[4] == "Answer number 4."


def test_pickle_that_runs_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"frame": _Exploit()}))
    with pytest.raises(InputError, match=r"posix\.system.*refusing to load"):
        read_openorca_pickle(path)
    assert not Path("/tmp/harness-pwned").exists()


def test_pickle_reaching_for_pandas_read_pickle_is_refused(tmp_path: Path) -> None:
    class _Nested:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (pd.read_pickle, ("/etc/passwd",))

    path = tmp_path / "nested.pkl"
    path.write_bytes(pickle.dumps(_Nested()))
    with pytest.raises(InputError, match="refusing to load"):
        read_openorca_pickle(path)


def test_missing_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "partial.pkl"
    _openorca_frame().drop(columns=["output"]).to_pickle(path)
    with pytest.raises(InputError, match="lacks column\\(s\\) output"):
        read_openorca_pickle(path)


def test_missing_file_and_garbage_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_openorca_pickle(tmp_path / "nope.pkl")
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(InputError):
        read_openorca_pickle(garbage)


def test_load_dataset_uses_tok_input_as_is_and_honours_max_samples(tmp_path: Path) -> None:
    path = tmp_path / "orca.pkl"
    _openorca_frame(8).to_pickle(path)
    data = load_dataset(build_config({"dataset": {"path": str(path), "max_samples": 3}}), tokenizer=None)
    assert len(data) == 3
    assert data.samples[1].input_ids == (1, 518, 25580, 29962, 101, 29871)
    assert data.references == ["Answer number 0.", "Answer number 1.", "Answer number 2."]
    assert len(data.sha256) == 64


def test_token_length_stats() -> None:
    stats = token_length_stats([10, 20, 30, 40])
    assert (stats["count"], stats["min"], stats["max"], stats["mean"]) == (4, 10.0, 40.0, 25.0)


def test_the_smoke_set_is_the_benchmarks_and_the_pipeline_hashes_that_one() -> None:
    from harness.dataset import smoke_entries, smoke_file, smoke_sha256
    from harness.pipeline.fingerprint import FileHasher, dataset_hash

    assert smoke_file() == smoke_file("llama2-70b-99.9") == smoke_file("llama2-70b-99") == "data/smoke_dataset.json"
    assert smoke_file("llama3.1-8b") == smoke_file("llama3.1-8b-edge") == "data/smoke_cnn_dailymail.json"
    assert [e.id for e in smoke_entries()] == [e.id for e in smoke_entries("llama2-70b-99.9")]
    assert load_references(None, "llama3.1-8b") != load_references(None)
    for benchmark in ("llama2-70b-99.9", "llama3.1-8b"):
        config = build_config({"benchmark": benchmark})
        assert dataset_hash(config, FileHasher({})) == smoke_sha256(benchmark)
