"""Llama 3.1 8B's dataset: the MLCommons CNN/DailyMail JSON read as data (full size, edge, calibration), every
malformed file a one-line error naming file, row and column; the smoke set prompted as the reference prompts."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import harness.benchmarks.llama3_1_8b.dataset as l31
from harness.benchmarks.registry import benchmark_facts, family_module
from harness.config import build_config
from harness.dataset import load_dataset, load_references, smoke_entries, smoke_file, smoke_sha256
from harness.errors import InputError
from harness.slurm.calibration import CALIBRATION_FILE, write_calibration_dir

REPO = Path(__file__).resolve().parents[5]


def _row(i: int, length: int = 6) -> dict[str, Any]:
    """One row as language/llama3.1-8b/download_cnndm.py writes it (instruction, input, tok_input, output)."""
    return {"instruction": {"llama": l31.PROMPT_TEMPLATE}, "input": f"Article {i} text. It has two sentences.",
            "tok_input": [128000, *range(100 + i % 7, 100 + i % 7 + length - 1)], "output": f"Summary {i} ."}


def _write(path: Path, rows: Any) -> Path:
    path.write_text(json.dumps(rows, indent=4, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def full_size(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic cnn_eval.json with all 13,368 rows."""
    return _write(tmp_path_factory.mktemp("cnn") / "cnn_eval.json", [_row(i) for i in range(13368)])


def test_the_family_loader_is_this_module() -> None:
    assert family_module("llama3.1-8b", "dataset") is l31
    assert family_module("llama3.1-8b-edge", "dataset") is l31


def test_full_size_file_reads_every_row_in_order(full_size: Path) -> None:
    prompts, outputs = l31.read_rows(full_size, None)
    assert len(prompts) == len(outputs) == benchmark_facts("llama3.1-8b").dataset_samples == 13368
    assert prompts[13367] == (128000, *range(100 + 13367 % 7, 100 + 13367 % 7 + 5))
    assert all(type(i) is int for i in prompts[5])
    assert outputs[0] == "Summary 0 ." and outputs[-1] == "Summary 13367 ."


def test_load_dataset_uses_tok_input_as_is(full_size: Path) -> None:
    config = build_config({"benchmark": "llama3.1-8b", "dataset": {"path": str(full_size)}})
    data = load_dataset(config, tokenizer=None)  # never tokenized again: no tokenizer needed
    assert len(data) == 13368
    assert data.samples[3].input_ids == (128000, 103, 104, 105, 106, 107)
    assert data.samples[3].reference == "Summary 3 ."
    assert data.source == str(full_size) and data.name == "cnn_eval.json" and len(data.sha256) == 64
    assert load_references(str(full_size), "llama3.1-8b")[13000] == "Summary 13000 ."


def test_small_file_and_max_samples(tmp_path: Path) -> None:
    path = _write(tmp_path / "sample_cnn_eval_5000.json", [_row(i, length=3) for i in range(5)])
    assert l31.read_rows(path, 2) == ([(128000, 100, 101), (128000, 101, 102)], ["Summary 0 .", "Summary 1 ."])
    assert l31.read_rows(path, 99)[1][-1] == "Summary 4 ."
    config = build_config({"benchmark": "llama3.1-8b-edge", "dataset": {"path": str(path), "max_samples": 3}})
    assert [s.reference for s in load_dataset(config, tokenizer=None).samples] == [
        "Summary 0 .", "Summary 1 .", "Summary 2 ."]
    assert l31.dataset_bytes(path) == path.read_bytes()


def test_only_the_rows_used_are_validated(tmp_path: Path) -> None:
    rows = [_row(0), _row(1), {**_row(2), "tok_input": []}]
    path = _write(tmp_path / "cnn_eval.json", rows)
    assert len(l31.read_rows(path, 2)[0]) == 2
    with pytest.raises(InputError, match="row 2, column tok_input is empty"):
        l31.read_rows(path, None)


def _replace(column: str, value: Any) -> Callable[[list[dict[str, Any]]], Any]:
    def change(rows: list[dict[str, Any]]) -> Any:
        rows[1][column] = value
        return rows
    return change


def _drop(column: str) -> Callable[[list[dict[str, Any]]], Any]:
    def change(rows: list[dict[str, Any]]) -> Any:
        del rows[1][column]
        return rows
    return change


MALFORMED: dict[str, tuple[Callable[[list[dict[str, Any]]], Any], str]] = {
    "top level object": (lambda rows: {"data": rows}, r"holds an object; expected an array of rows"),
    "row not an object": (lambda rows: [rows[0], [1, 2, 3]], r"row 1 is an array; expected an object"),
    "missing tok_input": (_drop("tok_input"), r"row 1 lacks column 'tok_input'; has instruction, input, output"),
    "missing output": (_drop("output"), r"row 1 lacks column 'output'"),
    "tok_input text": (_replace("tok_input", "1 2 3"), r"column tok_input is a string '1 2 3'; expected an array"),
    "tok_input null": (_replace("tok_input", None), r"row 1, column tok_input is null; expected an array of token ids"),
    "float id": (_replace("tok_input", [1, 2.0]), r"column tok_input holds the number 2\.0; expected non-negative"),
    "negative id": (_replace("tok_input", [1, -5]), r"row 1, column tok_input holds the number -5"),
    "bool id": (_replace("tok_input", [True, 2]), r"row 1, column tok_input holds the boolean true"),
    "string id": (_replace("tok_input", [1, "2"]), r"row 1, column tok_input holds a string '2'"),
    "empty prompt": (_replace("tok_input", []), r"row 1, column tok_input is empty"),
    "null output": (_replace("output", None), r"row 1, column output is null; expected the reference summary as text"),
    "number output": (_replace("output", 3.5), r"row 1, column output is the number 3\.5"),
    "empty output": (_replace("output", "  "), r"row 1, column output is empty"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_rows_are_one_line_input_errors(tmp_path: Path, case: str) -> None:
    change, expected = MALFORMED[case]
    path = _write(tmp_path / "cnn_eval.json", change([_row(i) for i in range(3)]))
    with pytest.raises(InputError) as caught:
        l31.read_rows(path, None)
    assert "\n" not in caught.value.message
    assert caught.value.message.startswith(str(path))
    assert re.search(expected, caught.value.message), caught.value.message


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "is empty; expected a JSON array"),
    (b"[{\"tok_input\": [1, 2], \"output\": \"a\"}, {\"tok_in", "is not valid JSON: .* at line 1 column"),
    (b"[1, 2,]", "is not valid JSON"),
    (b"\xff\xfe[]", r"is not UTF-8 text \(byte 0\)"),
    (pickle.dumps({"tok_input": [[1]]}, protocol=4), "is a pickle; llama3.1-8b reads the MLCommons JSON"),
    (b"\"just a string\"", "holds a string 'just a string'; expected an array"),
])
def test_files_that_are_not_the_json_array(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "cnn_eval.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=expected) as caught:
        l31.read_rows(path, None)
    assert "\n" not in caught.value.message and str(path) in caught.value.message


def test_missing_directory_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="does not exist") as caught:
        l31.read_rows(tmp_path / "nope.json", None)
    assert "cnn_eval.json" in (caught.value.hint or "")
    with pytest.raises(InputError, match="is a directory"):
        l31.dataset_bytes(tmp_path)
    path = _write(tmp_path / "cnn_eval.json", [_row(0)])
    monkeypatch.setattr(l31, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match=r"is \d[\d,]* bytes; a CNN/DailyMail JSON file is below 100"):
        l31.read_rows(path, None)


def test_a_run_config_refuses_the_file_before_the_engine_starts(tmp_path: Path) -> None:
    path = _write(tmp_path / "cnn_eval.json", [_row(0), {**_row(1), "output": None}])
    config = build_config({"benchmark": "llama3.1-8b", "dataset": {"path": str(path)}})
    with pytest.raises(InputError, match="row 1, column output"):
        load_dataset(config, tokenizer=None)


def test_calibration_prompts_are_the_instruction_around_each_article(tmp_path: Path) -> None:
    rows = [{"instruction": l31.PROMPT_TEMPLATE, "input": "A {braced} article.\nLine two.", "tok_input": [1, 2],
             "output": "Sum ."}, {"instruction": l31.PROMPT_TEMPLATE, "input": "Second.", "tok_input": [3],
                                  "output": "S ."}]
    path = _write(tmp_path / "cnn_dailymail_calibration.json", rows)
    prompts = l31.read_calibration_prompts(path)
    assert prompts[0] == ("Summarize the following news article in 128 tokens. Please output the summary only, "
                          "without any other text.\n\nArticle:\nA {braced} article.\nLine two.\n\nSummary:")
    assert write_calibration_dir(path, tmp_path / "calib") == 2
    lines = (tmp_path / "calib" / CALIBRATION_FILE).read_text().splitlines()
    assert [json.loads(line)["text"] for line in lines] == prompts


def test_calibration_file_without_articles(tmp_path: Path) -> None:
    path = _write(tmp_path / "cnn_dailymail_calibration.json", [{"tok_input": [1], "output": "x"}])
    with pytest.raises(InputError, match=r"row 0 lacks column 'input'"):
        l31.read_calibration_prompts(path)
    with pytest.raises(InputError, match="has no rows"):
        l31.read_calibration_prompts(_write(tmp_path / "empty.json", []))


def test_the_smoke_set_is_prompted_in_plain_text_as_the_reference(tokenizer: Any) -> None:
    """tok_input of the reference is tokenizer.encode(instruction): no chat template, even with chat_template on."""
    entries = l31.smoke_entries()
    assert [e.id for e in smoke_entries("llama3.1-8b")] == [e.id for e in entries]
    config = build_config({"benchmark": "llama3.1-8b", "dataset": {"chat_template": True, "max_samples": 4}})
    data = load_dataset(config, tokenizer)
    assert len(data) == 4
    for sample, entry in zip(data.samples, entries, strict=False):
        assert sample.input_ids == tuple(tokenizer(entry.question)["input_ids"])
        assert entry.question.startswith("Summarize the following news article in 128 tokens.")
        assert entry.question.endswith(f"Article:\n{entry.article}\n\nSummary:")
        assert sample.reference == entry.output
    assert data.sha256 == smoke_sha256("llama3.1-8b") != smoke_sha256("llama2-70b-99.9")
    assert smoke_file("llama3.1-8b") == "data/smoke_cnn_dailymail.json"
    assert load_references(None, "llama3.1-8b") == [e.output for e in entries]


def test_llama2_keeps_its_chat_templated_smoke_set(tokenizer: Any) -> None:
    data = load_dataset(build_config({"dataset": {"max_samples": 2}}), tokenizer)
    first = smoke_entries()[0]
    assert smoke_file() == "data/smoke_dataset.json" and first.id == "smoke-001"
    assert data.samples[0].input_ids != tuple(tokenizer(first.question)["input_ids"])  # the chat template wraps it


@pytest.mark.skipif(not (REPO / "harness/benchmarks/llama3_1_8b/evaluate.py").exists(), reason="no scorer yet")
def test_harness_run_accuracy_on_the_smoke_set_completes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "harness", "run", "--mode", "accuracy", "--set",
                           "benchmark=llama3.1-8b", "--set", "backend.kind=fake", "--no-progress", "--output-dir",
                           str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: the fake's answers miss the accuracy targets
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["benchmark"] == "llama3.1-8b"
    assert manifest["sample_count"] == len(smoke_entries("llama3.1-8b"))
    assert manifest["result"]["loadgen_errors"] == 0
    assert manifest["details"]["dataset_sha256"] == smoke_sha256("llama3.1-8b")
    text = (out / "accuracy.txt").read_text()
    for key in ("'rouge1':", "'rouge2':", "'rougeL':", "'rougeLsum':", "'gen_len':"):
        assert key in text, text
