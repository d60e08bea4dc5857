"""`harness evaluate`: prints accuracy.txt and the verdict, writes files, exit codes 0/1/2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli import main
from harness.tokenizer import load_tokenizer
from tests.unit.harness.benchmarks.conftest import write_log

REFERENCES = ["The cat sat on the mat. It was happy.", "Paris is the capital of France.", "Two plus two is four."]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A real OpenOrca-schema pickle and an int32 accuracy log from the embedded tokenizer."""
    root = tmp_path_factory.mktemp("evaluate")
    tokenizer = load_tokenizer(None)
    answers = ["The cat sat on the mat.", "Paris is in France.", "Four."]
    buffers = [(q, [*tokenizer(a, add_special_tokens=False)["input_ids"], 2]) for q, a in enumerate(answers)]
    dataset = root / "open_orca.pkl"
    pd.DataFrame({"tok_input": [[1, 2, 3]] * 3, "output": REFERENCES}).to_pickle(dataset)
    no_output = root / "no_output.pkl"
    pd.DataFrame({"tok_input": [[1]], "answer": ["x"]}).to_pickle(no_output)
    return {"log": write_log(root / "mlperf_log_accuracy.json", buffers), "dataset": dataset,
            "no_output": no_output, "partial": write_log(root / "partial.json", buffers[:2])}


def _run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--no-progress", *map(str, args)])
    out, err = capsys.readouterr()
    return int(exit_.value.code or 0), out, err


def test_scores_prints_and_writes(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "--accuracy-log", files["log"], "--dataset", files["dataset"],
                          "--output-dir", tmp_path)
    assert code == 0, err
    text = (tmp_path / "accuracy.txt").read_text()
    assert text.strip() in out and "'gen_num': 3" in text and "'tokens_per_sample':" in text
    assert "accuracy verdict" in out and "FAIL" in out  # 3 short answers miss tokens_per_sample
    assert (tmp_path / "accuracy.json").is_file()
    code, _, err = _run(capsys, "--accuracy-log", files["log"], "--dataset", files["dataset"],
                        "--output-dir", tmp_path)
    assert code == 2 and "already exists" in err
    code, _, err = _run(capsys, "--accuracy-log", files["log"], "--dataset", files["dataset"],
                        "--output-dir", tmp_path, "--overwrite", "--require-pass")
    assert code == 1 and "error: accuracy targets of llama2-70b-99.9 not met" in err


def test_partial_log_warns_with_the_count(files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--accuracy-log", files["partial"], "--dataset", files["dataset"],
                        "--output-dir", tmp_path)
    assert code == 0
    assert "warning: the accuracy log holds 2 of the dataset's 3 samples (1 missing)" in err


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ('[{"seq_id": 0, "qsl_idx": 0, "data": "XYZ0"}]', "data is not hexadecimal"),
    ("", "is empty"),
    ('[{"seq_id": 0, "qsl_idx": 7, "data": "02000000"}]', "qsl_idx is not in the dataset"),
])
def test_bad_log_is_one_error_line_and_exit_2(files: dict[str, Path], tmp_path: Path, content: str | None,
                                              message: str, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "mlperf_log_accuracy.json"
    if content is not None:
        log.write_text(content)
    code, _, err = _run(capsys, "--accuracy-log", log, "--dataset", files["dataset"], "--output-dir", tmp_path)
    assert code == 2
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "accuracy.txt").exists()


def test_dataset_without_output_column(files: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--accuracy-log", files["log"], "--dataset", files["no_output"],
                        "--output-dir", tmp_path)
    assert code == 2 and "output" in err.splitlines()[0] and "no_output.pkl" in err


def test_bad_options_exit_2(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for option, value in (("--dtype", "int8"), ("--benchmark", "gptj-99"), ("--splitter", "nltk-3.9")):
        code, _, err = _run(capsys, "--accuracy-log", files["log"], "--dataset", files["dataset"],
                            "--output-dir", tmp_path, option, value)
        assert code == 2 and f"'{value}'" in err
