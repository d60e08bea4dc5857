"""gpt-oss-120b's dataset loader: parquet and pickle DataFrames as MLCommons ships them, the download folder."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.benchmarks.gpt_oss_120b import dataset
from harness.benchmarks.gpt_oss_120b.extraction import Reference
from harness.benchmarks.gpt_oss_120b.facts import ACCURACY_FILE, PERFORMANCE_FILE, TEST07_FILE
from harness.config import RunConfig
from harness.dataset import dataset_file, load_references, oracle_texts
from harness.errors import InputError


def _frame(rows: int = 3, column: str = "input_tokens") -> pd.DataFrame:
    return pd.DataFrame({
        column: [np.array([200006, 17360 + i, 200008], dtype=np.int64) for i in range(rows)],
        "dataset": ["aime25", "gpqa_diamond", "livecodebench_v6"][:rows] + ["aime25"] * max(0, rows - 3),
        "ground_truth": ["204", "C", "abc301_a"][:rows] + ["7"] * max(0, rows - 3),
        "question": ["q"] * rows,
    })


def test_a_parquet_file_gives_the_prompt_ids_as_they_are_and_the_references(tmp_path: Path) -> None:
    path = tmp_path / "acc_eval_inputs.parquet"
    _frame().to_parquet(path)
    prompts, references = dataset.read_rows(path, None)
    assert prompts == [(200006, 17360, 200008), (200006, 17361, 200008), (200006, 17362, 200008)]
    assert references == [Reference("aime25", "204"), Reference("gpqa_diamond", "C"),
                          Reference("livecodebench_v6", "abc301_a")]
    assert dataset.read_rows(path, 2)[0] == prompts[:2]


def test_the_older_tok_input_column_and_numeric_aime_answers_are_read(tmp_path: Path) -> None:
    frame = _frame(column="tok_input")
    frame["dataset"] = ["aime25"] * 3
    frame["ground_truth"] = [204, 7, 0]
    path = tmp_path / "old.parquet"
    frame.to_parquet(path)
    assert [r.ground_truth for r in dataset.read_rows(path, None)[1]] == ["204", "7", "0"]
    frame["ground_truth"] = [2.5, 7.0, 0.0]
    frame.to_parquet(path)
    with pytest.raises(InputError, match="row 0: ground_truth is 2.5; expected text or a whole number"):
        dataset.read_rows(path, None)


def test_a_pickle_goes_through_the_restricted_unpickler(tmp_path: Path) -> None:
    path = tmp_path / "acc_eval_inputs.pkl"
    _frame().to_pickle(path)
    assert dataset.read_rows(path, None)[0][0] == (200006, 17360, 200008)

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"dataset": Evil()}))
    with pytest.raises(InputError, match="refusing to load it"):
        dataset.read_rows(bad, None)


@pytest.mark.parametrize(("value", "expected"), [
    (np.array([], dtype=np.int64), "non-empty list of token ids"),
    (np.array([1, 999_999_999]), "below 201088"),
    ("hello", "non-empty list of token ids"),
    (np.array([1.5, 2.0]), "non-empty list of token ids"),
])
def test_a_bad_prompt_row_is_one_line_naming_the_row_and_column(tmp_path: Path, value: object,
                                                                 expected: str) -> None:
    frame = _frame()
    frame["input_tokens"] = [frame["input_tokens"][0], value, frame["input_tokens"][2]]
    path = tmp_path / "bad.pkl"
    frame.to_pickle(path)
    with pytest.raises(InputError, match=expected) as caught:
        dataset.read_rows(path, None)
    assert "row 1: input_tokens" in caught.value.message and "\n" not in caught.value.message


def test_missing_columns_a_corrupt_parquet_and_other_suffixes_are_clear_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"dataset": ["aime25"]}).to_parquet(path)
    with pytest.raises(InputError, match="no prompt ids"):
        dataset.read_rows(path, None)
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match="not a readable parquet file"):
        dataset.read_rows(corrupt, None)
    with pytest.raises(InputError, match="neither .parquet nor .pkl"):
        dataset.read_rows(tmp_path / "x.json", None)
    with pytest.raises(InputError, match="does not exist"):
        dataset.read_rows(tmp_path / "missing.parquet", None)


def _download(tmp_path: Path) -> Path:
    for name, rows in ((PERFORMANCE_FILE, 4), (ACCURACY_FILE, 3), (TEST07_FILE, 2)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        _frame(rows).to_parquet(tmp_path / name)
    return tmp_path


def test_the_download_folder_gives_each_run_its_set(tmp_path: Path) -> None:
    root = _download(tmp_path)
    base = {"benchmark": "gpt-oss-120b", "dataset": {"path": str(root)}}
    assert dataset_file(RunConfig.model_validate(base)) == root / PERFORMANCE_FILE
    assert dataset_file(RunConfig.model_validate({**base, "mode": "accuracy"})) == root / ACCURACY_FILE
    assert dataset_file(RunConfig.model_validate({**base, "compliance_test": "TEST07"})) == root / TEST07_FILE
    assert len(load_references(str(root), "gpt-oss-120b")) == 3  # a folder scores against the accuracy set
    (root / ACCURACY_FILE).unlink()
    with pytest.raises(InputError, match="has no acc/acc_eval_inputs.parquet"):
        dataset_file(RunConfig.model_validate({**base, "mode": "accuracy"}))


def test_the_smoke_set_and_the_oracle_answers() -> None:
    entries = dataset.smoke_entries()
    kinds = {e.dataset for e in entries}
    assert {"aime25", "gpqa_diamond", "livecodebench_v6"} <= kinds
    references = dataset.smoke_references(entries)
    texts = oracle_texts(RunConfig.model_validate({"benchmark": "gpt-oss-120b", "mode": "accuracy"}))
    assert len(texts) == len(references)
    for reference, text in zip(references, texts, strict=True):
        assert text.startswith("<|channel|>final<|message|>") and text.endswith("<|return|>")
        if reference.dataset == "aime25":
            assert f"\\boxed{{{reference.ground_truth}}}" in text
