"""Parity with MLCommons' gpt-oss-120b scorer: its own functions and main() on generated answers (offline).

language/gpt-oss-120b/eval_accuracy.py and eval_mlperf_accuracy.py are taken from the inference mirror (a missing
mirror is a recorded skip). Extraction: a few hundred generated AIME / GPQA / code answers (harmony final channel
present, absent or corrupted, several boxed answers, "Answer:" forms, out-of-range numbers, lower-case letters,
noise) give the same extracted answers and verdicts. End to end: the script's main() scores a generated log with a
word-level tokenizer whose tokens are text chunks; accuracy.txt must equal its standard output. Its LiveCodeBench
loader and worker are replaced (in the script's namespace only) by a rule both sides share: code containing PASS
passes; so the comparison covers its code extraction, grouping, repeats, sums and printing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import pickle
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.benchmarks.gpt_oss_120b import evaluate as ours
from harness.benchmarks.gpt_oss_120b import livecodebench as lcb
from harness.benchmarks.gpt_oss_120b.extraction import Reference, judge_answer, parse_code
from tests.fake_support import chunk_tokenizer
from tests.unit.harness.benchmarks.official_script import git_show, inference_mirror

FOLDER = "language/gpt-oss-120b"
FINAL = "<|start|>assistant<|channel|>final<|message|>"
ANALYSIS = "<|channel|>analysis<|message|>"


def _load(tmp: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, tmp / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """(eval_accuracy, eval_mlperf_accuracy) imported from the mirror's HEAD."""
    mirror = inference_mirror()
    folder = tmp_path / "official"
    folder.mkdir()
    for name in ("eval_accuracy", "eval_mlperf_accuracy"):
        (folder / f"{name}.py").write_text(git_show(mirror, f"HEAD:{FOLDER}/{name}.py"))
    monkeypatch.syspath_prepend(str(folder))
    for name in ("eval_accuracy", "eval_mlperf_accuracy"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    accuracy = _load(folder, "eval_accuracy")
    mlperf = _load(folder, "eval_mlperf_accuracy")
    yield accuracy, mlperf
    for name in ("eval_accuracy", "eval_mlperf_accuracy"):
        sys.modules.pop(name, None)


NOISE = ["Let me think.", "**Step 1**", "so x = 3", "answer is unclear", "(C) is tempting", "\\n", "B.", "A)",
         "Answer", "ANSWER: maybe", "final answer", "2 + 2 = 4", "```", "日本語", ""]


def _gpqa(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFabcdX")
    final = rng.choice([letter, f"**{letter}**", f"({letter}) because", f"Answer: {letter}", f"answer. {letter}",
                        f"The answer is {letter}", f"['{letter}']", f"FINAL ANSWER: ({letter})", f"{letter}\\nmore",
                        "none of these", "", f"  \n{letter}", f"1. {letter}", f"Answer:{letter}x"])
    parts = []
    if rng.random() < 0.7:
        parts.append(ANALYSIS + rng.choice(NOISE) + f" Answer: {rng.choice('ABCD')} " + rng.choice(NOISE) + "<|end|>")
    marker = rng.choice([FINAL, "<|channel|>final 明<|message|>", "<|channel|>final537<|message|>", "", "final:"])
    parts.append(marker + final + rng.choice(["<|return|>", "", " trailing <|return|> after"]))
    return rng.choice([" ", "\n", ""]).join(parts)


def _aime(rng: random.Random) -> str:
    n = rng.choice([0, 7, 42, 999, 1000, 123456, rng.randrange(1000)])
    pieces = [rng.choice(NOISE),
              rng.choice([f"\\boxed{{{n}}}", f"\\boxed{{ {n} }}", f"\\boxed{{{n}.5}}", f"\\boxed{{x{n}}}", "",
                          f"Answer: {n}", f"answer:  {n:03d}", f"Answer: {n}.", f"ANSWER:\n{n}", f"Answer: {n}th",
                          f"\\boxed{{{rng.randrange(1000)}}} then \\boxed{{{n}}}", "Answer: ٣"]),
              rng.choice(NOISE), rng.choice(["", f"Answer: {rng.randrange(1200)}", f"\\boxed{{{n}}}"])]
    text = " ".join(pieces)
    return rng.choice([text, ANALYSIS + text + "<|end|>" + FINAL + rng.choice(NOISE) + "<|return|>"])


def _code(rng: random.Random) -> str:
    block = rng.choice(["```python\nprint(1)\n```", "```py\nx = 2\n```", "```\npython\nx = 3\n```", "``````",
                        "```python```", "```\nPY  \nprint(4)\n```", "```cpp\nint main(){}\n```", "no code", "```"])
    draft = rng.choice(["", "```python\ndraft()\n```", "```\nplain()\n```"])
    final = rng.choice([FINAL + block + "<|return|>", FINAL + "no code here<|return|>", block, FINAL + block])
    return rng.choice([ANALYSIS + draft + "<|end|>" + final, final, draft + " " + block])


def _official_verdict(accuracy: Any, dataset: str, text: str, truth: str) -> tuple[bool, Any]:
    """evaluate_single_entry of eval_mlperf_accuracy.py, with its exception handling."""
    evaluator = accuracy.get_evaluator(dataset)
    extracted = evaluator["parse"](text)
    if extracted is None:
        return False, None
    try:
        return bool(evaluator["evaluate"](extracted, truth)), extracted
    except Exception:  # as the script: an evaluation error is a wrong answer
        return False, extracted


def test_extraction_matches_official_functions(official: Any) -> None:
    accuracy, _ = official
    rng = random.Random(2026)
    checked = 0
    for _ in range(300):
        text, truth = _gpqa(rng), rng.choice(["A", "B", "C", "D", "b", " A"])
        assert judge_answer("gpqa", text, truth) == _official_verdict(accuracy, "gpqa_diamond", text, truth), text
        text = _aime(rng)
        truth = rng.choice([str(rng.randrange(1000)), "42", " 42", "042", "abc", "1_000", "7"])
        got = judge_answer("aime", text, truth)
        assert got == _official_verdict(accuracy, "aime25", text, truth), text
        text = _code(rng)
        assert parse_code(text) == accuracy.parse_code(text), text
        checked += 3
    for text in ["", "   ", "A", "a", "<|channel|>final<|message|>", "\\boxed{5}\\boxed{6}", "Answer: 5.\nAnswer: 6"]:
        assert judge_answer("gpqa", text, "A") == _official_verdict(accuracy, "gpqa", text, "A")
        assert judge_answer("aime", text, "6") == _official_verdict(accuracy, "aime", text, "6")
        assert parse_code(text) == accuracy.parse_code(text)
    assert checked == 900


def lcb_stub(item: tuple[str, str]) -> tuple[str, bool, str]:
    """The official worker's stand-in (module level: the script's process pool pickles it by name)."""
    code, question_id = item
    return question_id, "PASS" in code, "stub"


def _fake_runners(problems: dict[str, lcb.Problem]) -> tuple[int, Any]:
    """Our runner's stand-in with the same rule: code containing PASS prints the expected outputs."""
    by_inputs = {tuple(t.input for t in p.tests): p for p in problems.values()}

    def run(files: Any, argv: Any, wall: float) -> Any:
        job = json.loads(files["job.json"])
        problem = by_inputs[tuple(job["inputs"])]
        if "PASS" not in job["code"]:
            lines = [{"err": "stub"}]
        else:
            lines = [{"t": i, "out": t.output} for i, t in enumerate(problem.tests)] + [{"done": len(problem.tests)}]
        stdout = "".join(json.dumps(x) + "\n" for x in lines).encode()
        return type("Done", (), {"stdout": stdout, "timed_out": False, "returncode": 0})()

    return 1, lambda slot: run


def test_accuracy_txt_equals_official_output(official: Any, tmp_path: Path) -> None:
    _, mlperf = official
    rng = random.Random(7)
    smoke = ["smoke-stdin-add", "smoke-stdin-reverse"]
    rows: list[Reference] = []
    texts: list[str] = []
    for i in range(60):
        kind = ["aime25", "gpqa_diamond", "livecodebench_v6", "GPQA_Diamond"][i % 4]
        if kind == "aime25":
            texts.append(_aime(rng))
            rows.append(Reference(kind, str(rng.choice([42, 7, 999, rng.randrange(1000)]))))
        elif kind == "livecodebench_v6":
            texts.append(_code(rng).replace("print(1)", rng.choice(["PASS", "print(1)"])))
            rows.append(Reference(kind, rng.choice(smoke)))
        else:
            texts.append(_gpqa(rng))
            rows.append(Reference(kind, rng.choice("ABCD")))
    chunks: list[str] = []
    token_lists = []
    for text in texts:  # one token per whitespace-free piece, so decode(ids) == " ".join(pieces)
        pieces = text.split()
        for piece in pieces:
            if piece not in chunks:
                chunks.append(piece)
        token_lists.append([chunks.index(p) + 1 for p in pieces])
    tokenizer = chunk_tokenizer(tmp_path / "tok", chunks)
    order = [*range(60), 3, 5, 5, 0]  # every entry counts: duplicates too
    rng.shuffle(order)
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text(json.dumps([{"seq_id": n, "qsl_idx": q, "token_count": len(token_lists[q]),
                                "data": np.asarray(token_lists[q], "<i4").tobytes().hex().upper()}
                               for n, q in enumerate(order)]))
    import pandas as pd

    frame = pd.DataFrame({"dataset": [r.dataset for r in rows], "ground_truth": [r.ground_truth for r in rows]})
    with (tmp_path / "ref.pkl").open("wb") as handle:
        pickle.dump(frame, handle)

    mlperf.load_lcb_benchmark = lambda: {}
    mlperf.evaluate_livecodebench_worker = lcb_stub
    sys.argv = ["eval_mlperf_accuracy.py", "--mlperf-log", str(log), "--reference-data", str(tmp_path / "ref.pkl"),
                "--tokenizer", str(tmp_path / "tok"), "--num-lcb-workers", "1"]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        mlperf.main()

    problems = lcb.load_problems(None, smoke)
    report = ours.score_accuracy_log(log, rows, tokenizer, lcb_runners=_fake_runners(problems))
    assert ours.accuracy_text(report) == printed.getvalue()
    assert report.entries == 64 and report.duplicate_entries == 4
    assert {d.name for d in report.datasets} == {"aime25", "gpqa_diamond", "livecodebench_v6"}
    assert 0 < report.summary["exact_match"] < 100
