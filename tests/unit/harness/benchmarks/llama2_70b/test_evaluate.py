"""score_accuracy_log equals a plain implementation of the reference script, number for number."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness.benchmarks.llama2_70b import evaluate
from harness.benchmarks.scoring import texts
from harness.errors import ConfigError
from tests.unit.harness.benchmarks.conftest import write_log
from tests.unit.harness.benchmarks.scoring.corpus import pairs
from tests.unit.harness.benchmarks.scoring.reference_impl import reference_evaluate

CHECKER_PATTERNS = {  # inference@v4.0 submission_checker.py ACC_PATTERN
    "rouge1": r".*'rouge1':\s([\d.]+).*", "rouge2": r".*'rouge2':\s([\d.]+).*",
    "rougeL": r".*'rougeL':\s([\d.]+).*", "tokens_per_sample": r".*'tokens_per_sample':\s([\d.]+).*",
}


def _case(tokenizer: Any, tmp_path: Path, count: int = 120) -> tuple[Path, list[str]]:
    """A varied log: edited answers, empty, EOS-only, several EOS, very long, duplicates, specials."""
    corpus = pairs(seed=99, count=count, max_sentences=6)
    references = [r for r, _ in corpus]
    eos = tokenizer.eos_token_id
    buffers: list[tuple[int, list[int]]] = []
    for q, (_, prediction) in enumerate(corpus):
        buffers.append((q, [*tokenizer(prediction, add_special_tokens=False)["input_ids"], eos]))
    long_text = " ".join(p for _, p in corpus[:40])
    buffers[0] = (0, [eos])  # only EOS
    buffers[1] = (1, [eos, eos, eos])
    buffers[2] = (2, [*tokenizer(long_text, add_special_tokens=False)["input_ids"], eos])  # very long
    buffers[3] = (3, [1, *tokenizer("Hello there.", add_special_tokens=False)["input_ids"], 2, 2])
    buffers.append((5, [eos]))  # a duplicate: the first occurrence wins
    buffers = [b for b in buffers if b[0] != 7]  # one sample missing
    return write_log(tmp_path / "mlperf_log_accuracy.json", buffers), references


def test_summary_equals_the_reference_algorithm(tokenizer: Any, tmp_path: Path) -> None:
    log, references = _case(tokenizer, tmp_path)
    assert len(tokenizer.batch_decode([[2]], skip_special_tokens=True)[0]) == 0
    report = evaluate.score_accuracy_log(log, references, tokenizer)
    assert report.summary == reference_evaluate(log, references, tokenizer)
    assert list(report.summary) == list(evaluate.SUMMARY_KEYS)
    assert report.samples[0].gen_len == 0 and report.samples[0].rouge1 == 0.0
    assert report.samples[2].gen_tok_len > 1000
    assert (report.partial, report.missing_samples, report.duplicate_entries) == (True, 1, 1)
    assert "1 missing" in report.warnings[0]


def test_engines_and_worker_counts_give_the_same_report(tokenizer: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log, references = _case(tokenizer, tmp_path, count=60)
    serial = evaluate.score_accuracy_log(log, references, tokenizer, workers=1)
    monkeypatch.setattr(texts, "PARALLEL_MIN_SAMPLES", 1)
    forked = evaluate.score_accuracy_log(log, references, tokenizer, workers=2)
    python = evaluate.score_accuracy_log(log, references, tokenizer, workers=2, engine="python")
    assert serial.samples == forked.samples == python.samples
    assert serial.summary == forked.summary == python.summary
    assert python.engine == "python"


def test_accuracy_txt_is_the_reference_print_and_the_checker_reads_it(tokenizer: Any, tmp_path: Path) -> None:
    log, references = _case(tokenizer, tmp_path, count=30)
    report = evaluate.score_accuracy_log(log, references, tokenizer)
    written = evaluate.write_accuracy_outputs(report, tmp_path)
    text = (tmp_path / "accuracy.txt").read_text()
    assert text == "\nResults\n\n" + str(report.summary) + "\n"
    assert "np.float64" not in text
    for key, pattern in CHECKER_PATTERNS.items():
        values = [m.group(1) for line in text.splitlines() if (m := re.match(pattern, line))]
        assert [float(v) for v in values] == [report.summary[key]]
    data = json.loads((tmp_path / "accuracy.json").read_text())
    assert data["summary"] == report.summary and data["partial"] is True and data["missing_samples"] == 1
    assert len(data["samples"]) == 29 and data["samples"][4]["qsl_idx"] == 4
    assert [p.name for p in written] == ["accuracy.txt", "accuracy.json"]
    with pytest.raises(ConfigError, match="already exists"):
        evaluate.write_accuracy_outputs(report, tmp_path)
    evaluate.write_accuracy_outputs(report, tmp_path, overwrite=True)


def test_nltk310_splitter_is_passed_through_to_the_split(tokenizer: Any, tmp_path: Path) -> None:
    eos = tokenizer.eos_token_id
    answer = "He said “Stop.” Then he left. She said “Go.” And she stayed."
    ids = [*tokenizer(answer, add_special_tokens=False)["input_ids"], eos]
    log = write_log(tmp_path / "log.json", [(0, ids)])
    reference = ["He said “Stop.” Then he left the room. She said “Go.” And she stayed."]
    old = texts.prepare_texts(tokenizer, [ids], reference, splitter="nltk-3.8")
    new = texts.prepare_texts(tokenizer, [ids], reference, splitter="nltk-3.10")
    assert old.predictions[0].count("\n") == 1 and new.predictions[0].count("\n") == 3
    report = evaluate.score_accuracy_log(log, reference, tokenizer, splitter="nltk-3.10")
    assert report.splitter == "nltk-3.10"
    assert report.summary["gen_len"] == len(new.predictions[0])
