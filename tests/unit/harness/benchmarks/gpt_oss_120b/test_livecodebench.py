"""LiveCodeBench: the local copy's loading (errors are InputErrors, never a 0 score), the comparison rules, and
answers run in the real sandbox (skipped with the sandbox's reason where bwrap cannot run)."""

from __future__ import annotations

import base64
import json
import pickle
import zlib
from pathlib import Path

import pytest

from harness.benchmarks.gpt_oss_120b import livecodebench as lcb
from harness.errors import HarnessError, InputError

SMOKE = ["smoke-stdin-add", "smoke-stdin-reverse", "smoke-call-digits", "smoke-call-squares"]
RIGHT = {
    "smoke-stdin-add": "a, b = map(int, input().split())\nprint(a + b)",
    "smoke-stdin-reverse": "import sys\nw = sys.stdin.read().split()\nn = int(w[0])\n"
                           "print(' '.join(reversed(w[1:n + 1])))\nprint(n)",
    "smoke-call-digits": "class Solution:\n    def addDigits(self, num: int) -> int:\n"
                         "        return 0 if num == 0 else 1 + (num - 1) % 9",
    "smoke-call-squares": "class Solution:\n    def sortedSquares(self, nums: List[int], k: int) -> List[int]:\n"
                          "        return tuple(sorted(x * x for x in nums[:k]))",
}


def test_smoke_file_loads_and_private_tests_decode() -> None:
    problems = lcb.load_problems(None, SMOKE)
    assert {q: (p.fn_name, len(p.tests)) for q, p in problems.items()} == {
        "smoke-stdin-add": (None, 4), "smoke-stdin-reverse": (None, 3), "smoke-call-digits": ("addDigits", 4),
        "smoke-call-squares": ("sortedSquares", 4)}
    raw = [json.loads(line) for line in lcb.SMOKE_FILE.read_text().splitlines()]
    encoded = [r for r in raw if not r["private_test_cases"].startswith("[")]
    assert encoded, "one private test set is in the compressed form"
    for row in encoded:
        assert isinstance(lcb.decode_private_tests(row["private_test_cases"]), list)


def test_private_tests_are_unpickled_restricted() -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("owned",))

    blob = base64.b64encode(zlib.compress(pickle.dumps(Evil()))).decode()
    with pytest.raises(ValueError, match="not a plain string"):
        lcb.decode_private_tests(blob)
    with pytest.raises(ValueError, match="neither JSON"):
        lcb.decode_private_tests("not base64 !")


def _row(qid: str, private: str = "[]") -> dict:
    return {"question_title": "t", "question_content": "c", "platform": "atcoder", "question_id": qid,
            "contest_id": "c", "contest_date": "2025-01-01T00:00:00", "starter_code": "", "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "1\n", "output": "1\n", "testtype": "stdin"}]),
            "private_test_cases": private, "metadata": "{}"}


def test_copy_layouts_and_load_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no local LiveCodeBench copy") as err:
        lcb.load_problems(None, ["abc123"])
    assert "huggingface-cli download livecodebench/code_generation_lite" in (err.value.hint or "")
    with pytest.raises(InputError, match="does not exist"):
        lcb.load_problems(tmp_path / "absent", ["abc123"])
    folder = tmp_path / "code_generation_lite"
    folder.mkdir()
    for i, name in enumerate(lcb.RELEASE_V6_FILES[:-1]):
        (folder / name).write_text(json.dumps(_row(f"q{i}")) + "\n")
    with pytest.raises(InputError, match="lacks test6.jsonl"):
        lcb.load_problems(folder, ["q0"])
    (folder / "test6.jsonl").write_text(json.dumps(_row("q5")) + "\n" + json.dumps(_row("q5", "[]")) + "\n")
    (folder / "test7.jsonl").write_text(json.dumps(_row("q7")) + "\n")  # not release_v6
    assert set(lcb.load_problems(folder, ["q0", "q5"])) == {"q0", "q5"}
    with pytest.raises(InputError, match="not in the local copy") as unknown:
        lcb.load_problems(folder, ["q0", "q7"])
    assert "q7" in str(unknown.value)
    assert set(lcb.load_problems(folder / "test7.jsonl", ["q7"])) == {"q7"}
    (folder / "test3.jsonl").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:00\n")
    with pytest.raises(InputError, match="holds no question_id") as lfs:
        lcb.load_problems(folder, ["q0"])
    assert "git lfs pull" in (lfs.value.hint or "")
    (folder / "test3.jsonl").write_text(json.dumps(_row("bad", "@@@")) + "\n")
    with pytest.raises(InputError, match="not a valid LiveCodeBench problem"):
        lcb.load_problems(folder, ["bad"])


def test_comparison_rules() -> None:
    stdin = lcb.Problem("s", (lcb.TestCase("", "1.50 2\nYES\n"),), None)
    out = lambda text: (json.dumps({"t": 0, "out": text}) + "\n" + json.dumps({"done": 1}) + "\n").encode()  # noqa: E731
    assert lcb.compare_outputs(stdin, out("  1.5 2.0  \nYES")).passed
    assert not lcb.compare_outputs(stdin, out("1.5 2\nyes")).passed
    assert not lcb.compare_outputs(stdin, out("1.5 2\nYES\n\nextra")).passed
    assert not lcb.compare_outputs(stdin, out("sNaN 2\nYES")).passed
    assert not lcb.compare_outputs(stdin, out("1.5 2\nYES")[:-15]).passed  # no done line
    duplicate = (json.dumps({"t": 0, "out": "x"}) + "\n").encode() + out("1.5 2\nYES")
    assert not lcb.compare_outputs(stdin, duplicate).passed  # a forged extra line fails the answer
    call = lcb.Problem("c", (lcb.TestCase("[1]", "[[1, 2], 3]"),), "f")
    val = lambda enc: (json.dumps({"t": 0, "val": enc}) + "\n" + json.dumps({"done": 1}) + "\n").encode()  # noqa: E731
    assert not lcb.compare_outputs(call, val(["l", [["l", [["i", "0x1"], ["f", "0x1.0p+1"]]], ["b", False]]])).passed
    assert lcb.compare_outputs(call, val(["l", [["l", [["i", "0x1"], ["f", "0x1.0p+1"]]], ["i", "0x3"]]])).passed
    assert not lcb.compare_outputs(call, val(["l", [["t", [["i", "0x1"], ["i", "0x2"]]], ["i", "0x3"]]])).passed
    assert not lcb.compare_outputs(call, val(["o", "set"])).passed


@pytest.fixture(scope="module")
def runners() -> tuple:
    try:
        return lcb.sandbox_runners(2)
    except HarnessError as err:
        pytest.skip(f"the sandbox cannot run here: {err}")


def _judge(runners: tuple, answers: list[tuple[str, str]]) -> list[lcb.CodeResult]:
    problems = lcb.load_problems(None, {q for _, q in answers})
    return lcb.evaluate_codes(answers, problems, runners=runners, timeout=2)


def test_right_answers_pass_in_the_sandbox(runners: tuple) -> None:
    results = _judge(runners, [(code, qid) for qid, code in RIGHT.items()])
    assert [r.passed for r in results] == [True] * 4, results
    main_block = "if __name__ == '__main__':\n    a, b = map(int, input().split())\n    print(a + b)"
    assert _judge(runners, [(main_block, "smoke-stdin-add")])[0].passed


@pytest.mark.parametrize(("code", "qid", "why"), [
    ("a, b = map(int, input().split())\nprint(a - b)", "smoke-stdin-add", "wrong answer"),
    ("while True:\n    pass", "smoke-stdin-add", "timeout"),
    ("raise ValueError('no')", "smoke-stdin-add", "error"),
    ("import os\nos._exit(0)", "smoke-stdin-add", "stopped after"),
    ("class Solution:\n    def addDigits(self, num):\n        return str(num % 9)", "smoke-call-digits", "wrong"),
    ("class Solution:\n    def other(self, num):\n        return 1", "smoke-call-digits", "did not run"),
    ("class Solution:\n    def addDigits(self, num):\n        while True: pass", "smoke-call-digits", "timeout"),
    ("class Solution:\n    def sortedSquares(self, nums, k):\n        return [tuple(x * x for x in nums[:k])]",
     "smoke-call-squares", "wrong"),
    ("for line in __import__('sys').stdin:\n    print(line)", "smoke-stdin-add", "error"),  # as lcb_runner's stdin
    ("class Solution: pass\nprint(3)", "smoke-stdin-add", "did not run"),  # lcb_runner: 'class Solution' in stdin code
    (None, "smoke-stdin-add", "no code"),
    ("", "smoke-stdin-add", "empty"),
])
def test_failures_are_wrong_answers(runners: tuple, code: str | None, qid: str, why: str) -> None:
    result = _judge(runners, [(code, qid)])[0]
    assert not result.passed and why in result.detail, result


HOSTILE = [
    # looks for the expected outputs anywhere it can read
    "import os, glob\nfound = []\nfor p in glob.glob('/**/*.json*', recursive=True)[:2000]:\n"
    "    try:\n        found.append(open(p).read())\n    except Exception:\n        pass\n"
    "text = ' '.join(found)\nprint('30' if '\"30' in text else '3')",
    # forges result lines on the original stdout, every guess it can think of, and ends the process
    "import os, json\nfor fd in range(3, 20):\n    try:\n"
    "        for guess in ('3', '30', '0', '123456789013'):\n"
    "            os.write(fd, (json.dumps({'t': 0, 'out': guess}) + '\\n').encode())\n"
    "        os.write(fd, b'{\"done\": 4}\\n')\n    except OSError:\n        pass\nos._exit(0)",
    # an object equal to everything
    "class Solution:\n    def addDigits(self, num):\n        class Any:\n            def __eq__(self, o): return True\n"
    "        return Any()",
]


def test_hostile_answers_cannot_pass(runners: tuple) -> None:
    answers = [(HOSTILE[0], "smoke-stdin-add"), (HOSTILE[1], "smoke-stdin-add"), (HOSTILE[2], "smoke-call-digits")]
    results = _judge(runners, answers)
    assert [r.passed for r in results] == [False, False, False], results


def test_job_files_hold_no_expected_output() -> None:
    problem = lcb.load_problems(None, ["smoke-stdin-add"])["smoke-stdin-add"]
    files = lcb.job_files("print(1)", problem)
    job = json.loads(files["job.json"])
    assert set(job) == {"code", "fn_name", "inputs", "timeout"}
    assert all(t.output.strip() not in files["job.json"].decode() for t in problem.tests if len(t.output) > 2)
    assert b"import harness" not in files["lcb_exec.py"] and b"from harness" not in files["lcb_exec.py"]
