"""LiveCodeBench (release_v6, code_generation_lite) from a local copy, and code answers scored in the sandbox.

The reference (language/gpt-oss-120b/eval_accuracy.py ``load_lcb_benchmark`` / ``evaluate_livecodebench_detailed``)
builds ``release_v6`` through LiveCodeBench's lcb_runner (LiveCodeBench/LiveCodeBench at b1e7cab4,
lcb_runner/benchmarks/code_generation.py): the Hugging Face dataset ``livecodebench/code_generation_lite`` files
test.jsonl, test2.jsonl ... test6.jsonl, one problem per line; ``public_test_cases`` is JSON, ``private_test_cases``
JSON or base64(zlib(pickle(JSON text))), ``metadata`` JSON whose ``func_name`` makes a problem call-based. The tests
are the public ones, then the private ones (``get_evaluation_sample``). A (code, question_id) passes when every test
passes (lcb_runner/evaluation/compute_code_generation_metrics.py, pass_k_utils.py ``extract_instance_results``).

Here:
- ``load_problems`` reads only the problems asked for, never fetches anything, and refuses (InputError, never a score
  of 0; mlcommons/inference#2476) a missing or unreadable copy, a Git LFS pointer instead of data, a malformed
  problem and an unknown question_id. A directory must hold the six release_v6 files (later files of newer copies,
  test7.jsonl ..., are ignored, as release_v6 ignores them); a single .jsonl file is read as is. A question_id seen
  twice: the later line wins (the reference's id -> problem dict does the same). Private tests in the
  compressed form are unpickled with the harness's restricted unpickler (no global may be resolved: the payload is
  a string), never with plain pickle.
- ``evaluate_codes`` runs each answer with lcb_exec.py in the sandbox, on all slots in parallel, with only the
  test INPUTS inside; the outputs it prints are compared here with the expected outputs as lcb_runner compares:
  standard-input tests line by line after stripping (exact, else every whitespace-separated token equal as
  ``decimal.Decimal``); call-based tests with ``==`` on the returned value (JSON-decoded expected output; a tuple
  counts as a list). A timeout, crash, kill, error or unreadable output fails the answer; it never stops scoring.

Timeouts are lcb_runner's as the reference calls it: 60 s per test (SIGALRM inside), and the whole run is bounded by
its global timeout, (60 + 1) x tests + 5 s, of wall and of CPU time.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from queue import SimpleQueue
from typing import Any, Protocol

from harness.benchmarks.pickles import _RestrictedUnpickler
from harness.errors import HarnessError, InputError

__all__ = ["FETCH_HINT", "RELEASE_V6_FILES", "RUNNER", "SMOKE_FILE", "SMOKE_PREFIX", "TEST_TIMEOUT", "CodeResult",
           "Problem", "PythonRunner", "TestCase", "compare_outputs", "decode_private_tests", "decode_value",
           "evaluate_codes", "job_files", "load_problems", "resolve_source", "sandbox_runners"]

RELEASE_V6_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl", "test6.jsonl")
SMOKE_FILE = Path(__file__).resolve().parents[2] / "data" / "smoke_livecodebench.jsonl"
SMOKE_PREFIX = "smoke-"  # question ids of the embedded smoke problems
RUNNER = Path(__file__).with_name("lcb_exec.py")
TEST_TIMEOUT = 60  # lcb_runner's per-test timeout as the reference calls it (timeout=60)
MEMORY_BYTES = 4 * 1024**3
OUTPUT_BYTES = 256 * 1024**2
FETCH_HINT = ("on a machine with network: huggingface-cli download livecodebench/code_generation_lite "
              "--repo-type dataset --local-dir code_generation_lite (or git clone "
              "https://huggingface.co/datasets/livecodebench/code_generation_lite, then git lfs pull), copy the "
              "folder here and pass it with --livecodebench DIR")
_ID = re.compile(rb'[{,]\s*"question_id"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class TestCase:
    """One test: input text and expected output text (JSON lines for call-based problems)."""

    input: str
    output: str


@dataclass(frozen=True)
class Problem:
    """A problem's tests (public then private) and, for call-based problems, the method name."""

    question_id: str
    tests: tuple[TestCase, ...]
    fn_name: str | None


@dataclass(frozen=True)
class CodeResult:
    """One answer's verdict with a short reason."""

    passed: bool
    detail: str


class RunResult(Protocol):
    stdout: bytes
    timed_out: bool
    returncode: int | None


# (files, argv, wall_seconds) -> a result with stdout; one call per answer
PythonRunner = Callable[[Mapping[str, bytes], Sequence[str], float], RunResult]


# --- loading ------------------------------------------------------------------------------------------------

def resolve_source(livecodebench: Path | None, question_ids: Iterable[str]) -> list[Path]:
    """The jsonl files to read: the user's copy (directory or file), or the smoke file for smoke ids only."""
    ids = set(question_ids)
    if livecodebench is None:
        if ids and all(q.startswith(SMOKE_PREFIX) for q in ids):
            return [SMOKE_FILE]
        sample = sorted(q for q in ids if not q.startswith(SMOKE_PREFIX))[:3]
        raise InputError(f"the log has LiveCodeBench answers (question ids {', '.join(sample)} ...) but no local "
                         "LiveCodeBench copy was given; expected the code_generation_lite folder (release_v6: "
                         f"{', '.join(RELEASE_V6_FILES)})", hint=FETCH_HINT)
    path = Path(livecodebench)
    if path.is_dir():
        missing = [name for name in RELEASE_V6_FILES if not (path / name).is_file()]
        if missing:
            raise InputError(f"LiveCodeBench copy {path} lacks {', '.join(missing)}; release_v6 needs "
                             f"{', '.join(RELEASE_V6_FILES)}", hint=FETCH_HINT)
        return [path / name for name in RELEASE_V6_FILES]
    if path.is_file():
        if path.suffix != ".jsonl":
            raise InputError(f"LiveCodeBench copy {path} is not a .jsonl file; expected the code_generation_lite "
                             "folder or one of its .jsonl files", hint=FETCH_HINT)
        return [path]
    raise InputError(f"LiveCodeBench copy {path} does not exist; expected the code_generation_lite folder",
                     hint=FETCH_HINT)


def load_problems(livecodebench: Path | None, question_ids: Iterable[str]) -> dict[str, Problem]:
    """The problems of these question ids from the local copy (see the module doc); anything wrong: InputError."""
    wanted = set(question_ids)
    raw: dict[str, tuple[Path, int, bytes]] = {}
    for path in resolve_source(livecodebench, wanted):
        for number, line in _lines(path):
            match = _ID.search(line)
            if match is None:
                raise InputError(f"{path}: line {number} holds no question_id; expected one LiveCodeBench "
                                 f"problem per line, seen {line[:60]!r}", hint=_hint_for(line))
            qid = json.loads(b'"' + match.group(1) + b'"')
            if qid in wanted:
                raw[qid] = (path, number, line)
    unknown = sorted(wanted - raw.keys())
    if unknown:
        raise InputError(f"{len(unknown)} LiveCodeBench question id(s) of the references are not in the local "
                         f"copy ({', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}); expected every "
                         "ground_truth of a livecodebench row to be a release_v6 question_id",
                         hint="pass the complete code_generation_lite copy (release_v6) that matches the dataset")
    return {qid: _problem(qid, *where) for qid, where in raw.items()}


def _lines(path: Path) -> Iterable[tuple[int, bytes]]:
    try:
        with path.open("rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    yield number, line
    except OSError as err:
        raise InputError(f"cannot read LiveCodeBench file {path}: {err.strerror or err}",
                         hint="check the file's permissions and that its file system is mounted") from None


def _hint_for(line: bytes) -> str:
    if line.startswith(b"version https://git-lfs"):
        return "the file is a Git LFS pointer, not the data: run git lfs pull in the clone (or use huggingface-cli)"
    return FETCH_HINT


def _problem(qid: str, path: Path, number: int, line: bytes) -> Problem:
    where = f"{path}: line {number} (question_id {qid})"
    try:
        row = json.loads(line)
        public = _tests(json.loads(row["public_test_cases"]), "public_test_cases")
        private = _tests(decode_private_tests(row["private_test_cases"]), "private_test_cases")
        metadata = json.loads(row["metadata"])
        if not isinstance(metadata, dict):
            raise ValueError("metadata is not a JSON object")
        fn_name = metadata.get("func_name")
        if fn_name is not None and not isinstance(fn_name, str):
            raise ValueError("metadata func_name is not a string")
    except InputError:
        raise
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing field {err}" if isinstance(err, KeyError) else str(err).splitlines()[0][:200]
        raise InputError(f"{where} is not a valid LiveCodeBench problem ({detail})",
                         hint="the copy is damaged or not code_generation_lite; download it again") from None
    return Problem(qid, public + private, fn_name)


def _tests(cases: Any, field: str) -> tuple[TestCase, ...]:
    if not isinstance(cases, list):
        raise ValueError(f"{field} is not a list")
    tests = []
    for case in cases:
        if not isinstance(case, dict) or not {"input", "output", "testtype"} <= case.keys():
            raise ValueError(f"{field} holds a test without input, output and testtype")
        if case["testtype"] not in ("stdin", "functional"):
            raise ValueError(f"{field} holds testtype {case['testtype']!r}; expected stdin or functional")
        if not isinstance(case["input"], str) or not isinstance(case["output"], str):
            raise ValueError(f"{field} holds a test whose input or output is not text")
        tests.append(TestCase(case["input"], case["output"]))
    return tuple(tests)


def decode_private_tests(text: str) -> Any:
    """private_test_cases: JSON, else base64(zlib(pickle(JSON text))) unpickled without resolving any global."""
    if not isinstance(text, str):
        raise ValueError("private_test_cases is not text")
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        packed = zlib.decompress(base64.b64decode(text.encode("utf-8")))
        inner = _RestrictedUnpickler(io.BytesIO(packed)).load()
    except (binascii.Error, zlib.error, ValueError, EOFError) as err:
        raise ValueError(f"private_test_cases is neither JSON nor base64(zlib(pickle)) ({err})") from None
    except Exception as err:  # a refused global or a malformed pickle: data we will not read
        raise ValueError(f"private_test_cases holds a pickle that is not a plain string ({type(err).__name__})") \
            from None
    if not isinstance(inner, str):
        raise ValueError(f"private_test_cases unpickles to {type(inner).__name__}, expected JSON text")
    return json.loads(inner)


# --- comparison (outside the sandbox) -------------------------------------------------------------------------

class _Opaque:
    """A returned value of a type no expected output can equal."""

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return id(self)


def decode_value(encoded: Any) -> Any:
    """lcb_exec.py's typed encoding -> the equal Python value; malformed input raises ValueError."""
    if not isinstance(encoded, list) or not encoded or not isinstance(encoded[0], str):
        raise ValueError("malformed value")
    tag, rest = encoded[0], encoded[1:]
    if tag == "n":
        return None
    if tag == "o":
        return _Opaque()
    if len(rest) != 1:
        raise ValueError("malformed value")
    value = rest[0]
    if tag == "b" and isinstance(value, bool):
        return value
    if tag == "i" and isinstance(value, str):
        return int(value, 16)
    if tag == "f" and isinstance(value, str):
        return float.fromhex(value)
    if tag == "s" and isinstance(value, str):
        return value
    if tag in ("l", "t") and isinstance(value, list):
        items = [decode_value(v) for v in value]
        return items if tag == "l" else tuple(items)
    if tag == "d" and isinstance(value, list):
        pairs = [(decode_value(k), decode_value(v)) for k, v in value]
        return dict(pairs)
    raise ValueError("malformed value")


def _big_int(digits: str) -> int:
    """int(digits) for JSON integers of up to 50,000 digits (lcb_runner raises the limit to 50,000)."""
    count = len(digits.lstrip("-"))
    if count > 50000:
        raise ValueError("integer with more than 50000 digits")
    if count <= 4000:
        return int(digits)
    sign, body = (-1, digits[1:]) if digits.startswith("-") else (1, digits)
    value = 0
    for start in range(0, len(body), 4000):
        chunk = body[start:start + 4000]
        value = value * 10 ** len(chunk) + int(chunk)
    return sign * value


def _stripped_lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().split("\n")]


def _decimals(line: str) -> list[Decimal] | None:
    try:
        return [Decimal(token) for token in line.split()]
    except Exception:  # lcb_runner: any failure means "not numbers"
        return None


def _stdin_matches(produced: str, expected: str) -> bool:
    got, want = _stripped_lines(produced), _stripped_lines(expected)
    if len(got) != len(want):
        return False
    for got_line, want_line in zip(got, want, strict=True):
        if got_line == want_line:
            continue
        got_numbers, want_numbers = _decimals(got_line), _decimals(want_line)
        if got_numbers is None or want_numbers is None or got_numbers != want_numbers:
            return False
    return True


def compare_outputs(problem: Problem, stdout: bytes) -> CodeResult:
    """The verdict on lcb_exec.py's output for this problem (strict: one line per test, in order, then done)."""
    try:
        records = [json.loads(line) for line in stdout.decode("utf-8").splitlines() if line.strip()]
    except (UnicodeDecodeError, ValueError):
        return CodeResult(False, "unreadable runner output")
    expected: list[Any] = []
    if problem.fn_name is not None:
        try:
            expected = [json.loads(t.output, parse_int=_big_int) for t in problem.tests]
        except (ValueError, RecursionError):
            return CodeResult(False, "an expected output is not JSON")
    tests = problem.tests
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            return CodeResult(False, "malformed runner output")
        if "done" in record:
            if record != {"done": len(tests)} or index != len(tests) or index != len(records) - 1:
                return CodeResult(False, "malformed runner output")
            return CodeResult(True, f"passed {len(tests)}/{len(tests)} tests")
        if "err" in record and "t" not in record:
            return CodeResult(False, f"did not run: {str(record['err'])[:200]}")
        failed = _check_record(problem, expected, index, record)
        if failed is not None:
            return failed
    return CodeResult(False, f"stopped after {len(records)} of {len(tests)} tests (timeout, crash or kill)")


def _check_record(problem: Problem, expected: list[Any], index: int, record: dict) -> CodeResult | None:
    """None when test `index`'s record shows the expected output, else the failing verdict."""
    if record.get("t") != index or index >= len(problem.tests):
        return CodeResult(False, "malformed runner output")
    if "err" in record:
        return CodeResult(False, f"test {index}: {str(record['err'])[:200]}")
    try:
        if problem.fn_name is None:
            produced = record["out"]
            if not isinstance(produced, str):
                return CodeResult(False, "malformed runner output")
            ok = _stdin_matches(produced, problem.tests[index].output)
        else:
            ok = bool(decode_value(record["val"]) == expected[index])
    except (KeyError, ValueError, ArithmeticError, RecursionError, TypeError):
        return CodeResult(False, f"test {index}: output not comparable")
    return None if ok else CodeResult(False, f"test {index}: wrong answer")


# --- running ------------------------------------------------------------------------------------------------

def job_files(code: str, problem: Problem, timeout: int = TEST_TIMEOUT) -> dict[str, bytes]:
    """The sandbox's files: the runner and the job (code, method name, test inputs; no expected output)."""
    job = {"code": code, "fn_name": problem.fn_name, "inputs": [t.input for t in problem.tests],
           "timeout": int(timeout)}
    return {"lcb_exec.py": RUNNER.read_bytes(), "job.json": json.dumps(job).encode()}


def run_limit(problem: Problem, timeout: int = TEST_TIMEOUT) -> float:
    """lcb_runner's global timeout of one answer: (timeout + 1) x tests + 5 seconds."""
    return float((timeout + 1) * len(problem.tests) + 5)


def sandbox_runners(workers: int | None = None) -> tuple[int, Callable[[int], PythonRunner]]:
    """(how many in parallel, slot -> runner) backed by harness.sandbox; unusable bwrap raises its HarnessError."""
    from harness.sandbox import Sandbox, SandboxLimits, sandbox_workers

    Sandbox.check_available()
    count = sandbox_workers(workers)
    cache: dict[tuple[int, float], Any] = {}
    lock = threading.Lock()

    def runner_for(slot: int) -> PythonRunner:
        def run(files: Mapping[str, bytes], argv: Sequence[str], wall: float) -> RunResult:
            with lock:
                sandbox = cache.get((slot, wall))
                if sandbox is None:
                    limits = SandboxLimits(cpu_seconds=wall, wall_seconds=wall, memory_bytes=MEMORY_BYTES,
                                           output_bytes=OUTPUT_BYTES)
                    sandbox = cache[(slot, wall)] = Sandbox(limits, slot=slot)
            return sandbox.run_python(files, argv)
        return run

    return count, runner_for


def evaluate_codes(items: Sequence[tuple[str | None, str]], problems: Mapping[str, Problem], *,
                   workers: int | None = None, runners: tuple[int, Callable[[int], PythonRunner]] | None = None,
                   timeout: int = TEST_TIMEOUT, on_done: Callable[[], None] | None = None) -> list[CodeResult]:
    """Verdicts of (extracted code or None, question_id) pairs, in order; every question_id must be in problems.

    runners: (parallel slots, slot -> runner); default the sandbox (sandbox_runners). Answers without code fail
    without running, as the reference's "No code extracted".
    """
    results: list[CodeResult | None] = [None] * len(items)
    todo = []
    for position, (code, _qid) in enumerate(items):
        if not code:
            results[position] = CodeResult(False, "no code extracted" if code is None else "empty code")
            if on_done is not None:
                on_done()
        else:
            todo.append(position)
    if todo:
        count, runner_for = runners if runners is not None else sandbox_runners(workers)
        slots: SimpleQueue[int] = SimpleQueue()
        for slot in range(count):
            slots.put(slot)

        def one(position: int) -> None:
            code, qid = items[position]
            assert code
            problem = problems[qid]
            slot = slots.get()
            try:
                done = runner_for(slot)(job_files(code, problem, timeout), ["lcb_exec.py", "job.json"],
                                        run_limit(problem, timeout))
                result = compare_outputs(problem, done.stdout)
                if not result.passed and result.detail.startswith("stopped after"):
                    tail = bytes(getattr(done, "stderr", b"") or b"")[-200:].decode("utf-8", "replace").strip()
                    result = CodeResult(False, f"{result.detail}; exit {done.returncode}, timed out "
                                               f"{done.timed_out}{'; stderr: ' + tail if tail else ''}")
                results[position] = result
            except (HarnessError, OSError):
                raise  # the sandbox itself failed (not the answer): scoring stops, never a silent 0
            except Exception as err:  # a runner failure fails this answer and is said; scoring goes on
                results[position] = CodeResult(False, f"runner failed: {type(err).__name__}: {err}"[:300])
            finally:
                slots.put(slot)
                if on_done is not None:
                    on_done()

        with ThreadPoolExecutor(max_workers=count) as pool:
            list(pool.map(one, todo))
    return [r if r is not None else CodeResult(False, "not run") for r in results]
