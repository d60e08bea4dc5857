"""The scorer's contract: accuracy.txt read by the checker's exact_match pattern, accuracy.json, verdicts, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.benchmarks.gpt_oss_120b import evaluate as ev
from harness.benchmarks.gpt_oss_120b.extraction import Reference
from harness.errors import ConfigError, HarnessError, InputError
from tests.unit.harness.benchmarks.gpt_oss_120b.test_extraction_official import chunk_tokenizer

EXACT_MATCH = r".*'exact_match':\s([\d.]+).*"  # the checker's ACC_PATTERN["exact_match"] (constants.py, HEAD)
ANSWERS = [
    ("aime25", "42", "<|channel|>analysis<|message|>maybe \\boxed{41}<|end|> \\boxed{42}"),
    ("gpqa_diamond", "C", "<|channel|>final<|message|>**C**<|return|>"),
    ("gpqa_diamond", "A", "<|channel|>final<|message|>B<|return|>"),
    ("livecodebench_v6", "smoke-stdin-add",
     "<|channel|>final<|message|>```python\na,b=map(int,input().split())\nprint(a+b)\n```<|return|>"),
    ("livecodebench_v6", "smoke-call-digits", "<|channel|>final<|message|>no code<|return|>"),
]


def _setup(tmp_path: Path, order: list[int]) -> tuple[Path, list[Reference], object]:
    chunks: list[str] = []
    ids = []
    for _, _, text in ANSWERS:
        for piece in text.split(" "):
            if piece not in chunks:
                chunks.append(piece)
        ids.append([chunks.index(p) + 1 for p in text.split(" ")])
    tokenizer = chunk_tokenizer(tmp_path / "tok", chunks)
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps([{"seq_id": n, "qsl_idx": q, "data": np.asarray(ids[q], "<i4").tobytes().hex()}
                               for n, q in enumerate(order)]))
    return log, [Reference(d, g) for d, g, _ in ANSWERS], tokenizer


def test_scores_the_smoke_set_through_the_sandbox(tmp_path: Path) -> None:
    log, refs, tokenizer = _setup(tmp_path, [0, 1, 2, 3, 4, 1])
    try:
        report = ev.score_accuracy_log(log, refs, tokenizer, workers=2, lcb_timeout=5, splitter="ignored")
    except HarnessError as err:
        if "bwrap" in str(err) or "sandbox" in str(err):
            pytest.skip(f"the sandbox cannot run here: {err}")
        raise
    text = ev.accuracy_text(report)
    # aime 1/1 -> 1/8; gpqa 2/3 -> 2/5; lcb 1/2 -> 1/3; score = (1/8 + 2/5 + 1/3) / (1/8 + 3/5 + 2/3) * 100
    expected = (1 / 8 + 2 / 5 + 1 / 3) / (1 / 8 + 3 / 5 + 2 / 3) * 100
    assert re.match(EXACT_MATCH, text.splitlines()[-1]).group(1) == f"{expected:.3f}"
    assert report.summary["exact_match"] == float(f"{expected:.3f}")
    assert report.summary["gpqa_diamond_correct"] == 2 and report.summary["livecodebench_v6_total"] == 2
    assert [s.correct for s in report.samples] == [True, True, False, True, False, True]
    assert report.duplicate_entries == 1 and not report.partial
    assert {v.metric for v in report.verdicts} == {"exact_match", "tokens_per_sample"}
    assert not report.passed  # 69.9 < 82.3
    paths = ev.write_accuracy_outputs(report, tmp_path / "out")
    data = json.loads(paths[1].read_text())
    assert data["summary"]["tokens_per_sample"] == pytest.approx(report.summary["tokens_per_sample"])
    assert data["livecodebench"]["source"].endswith("smoke_livecodebench.jsonl")
    assert paths[0].read_text() == text
    with pytest.raises(ConfigError, match="already exists"):
        ev.write_accuracy_outputs(report, tmp_path / "out")


def test_partial_log_warns(tmp_path: Path) -> None:
    log, refs, tokenizer = _setup(tmp_path, [0, 1])
    report = ev.score_accuracy_log(log, refs, tokenizer)
    assert report.partial and "3 missing" in report.warnings[0]
    assert report.engine == "none"


def test_input_errors_never_zero_scores(tmp_path: Path) -> None:
    log, refs, tokenizer = _setup(tmp_path, [0, 3])
    real = [Reference("livecodebench_v6", "abc300_a") if r.dataset == "livecodebench_v6" else r for r in refs]
    with pytest.raises(InputError, match="no local LiveCodeBench copy"):
        ev.score_accuracy_log(log, real, tokenizer)
    with pytest.raises(InputError, match="not in the local copy"):
        ev.score_accuracy_log(log, real, tokenizer,
                              livecodebench=Path(__file__).parents[5] / "harness/data/smoke_livecodebench.jsonl")
    with pytest.raises(InputError, match="not in the dataset"):
        ev.score_accuracy_log(log, refs[:2], tokenizer)
    with pytest.raises(InputError, match="no gpt-oss-120b evaluator"):
        ev.score_accuracy_log(log, [Reference("squad", "x")] * 5, tokenizer)
    with pytest.raises(InputError, match="PRM800K"):
        ev.score_accuracy_log(log, [Reference("math500", "x")] * 5, tokenizer)
    with pytest.raises(ConfigError, match="int32"):
        ev.score_accuracy_log(log, refs, tokenizer, dtype="int64")
