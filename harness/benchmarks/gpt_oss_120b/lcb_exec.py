"""Run one LiveCodeBench answer on its test INPUTS and print what it produced; runs inside the sandbox.

This file is read as text by harness/benchmarks/gpt_oss_120b/livecodebench.py and handed to the sandbox as a file;
it imports nothing but the standard library and never the harness. It is given ``job.json``:
``{"code": str, "fn_name": str | null, "inputs": [str, ...], "timeout": int}`` and never sees an expected output;
the comparison happens outside (livecodebench.py).

It executes the code as LiveCodeBench's lcb_runner does (LiveCodeBench/LiveCodeBench at b1e7cab4,
lcb_runner/evaluation/testing_util.py ``run_test`` / ``grade_stdio`` / ``grade_call_based`` and
compute_code_generation_metrics.py), written here independently with the same behaviour:

- the process state: integer-to-text conversions up to 50,000 digits; the "reliability guard" (os.kill, os.system,
  os.remove, os.getcwd, subprocess.Popen, shutil.rmtree ... set to None, ``quit`` and ``help`` None, some modules
  blocked, OMP_NUM_THREADS=1); a SIGALRM of ``timeout`` whole seconds around the compilation and around every test.
- standard input problems (fn_name null): a trailing ``if __name__ == '__main__':`` block is unwrapped; top-level
  imports are hoisted and everything else becomes the body of ``wrapped_function()``, preceded by LiveCodeBench's
  block of star imports; the module is executed (code that mentions ``class Solution`` then fails, as there). For
  each test, ``wrapped_function()`` is called with ``sys.stdout`` captured and ``sys.stdin`` / ``open`` replaced by
  stand-ins serving the input (``read``, ``readline``, ``readlines``, ``buffer.read``, ``buffer.readline`` behave as
  lcb_runner's mock; ``SystemExit`` ends the test normally).
- call-based problems: the star-import block, then the code, executed as a module; ``Solution()`` when the code
  mentions ``class Solution``; the method ``fn_name``; every input line is JSON, the arguments of one call.
  A tuple result becomes a list. The value is printed in a typed encoding (ints in hex, floats as float.hex,
  tuples, dicts as pairs, anything else opaque) so the outside comparison is Python's ``==`` on the same values.
- the first test that raises or times out ends the run (lcb_runner stops there too); wrong answers cannot be seen
  here, so every other test runs.

Output protocol (one JSON object per line on the original standard output; file descriptor 1 itself is redirected to
/dev/null first, so the program's own stray writes cannot mix in): ``{"t": i, "out": captured}`` (stdin) or
``{"t": i, "val": encoded}`` (call-based) per test, ``{"t": i, "err": why}`` for a test that failed to run,
``{"err": why}`` when compilation failed, and ``{"done": n}`` at the end.
"""

import ast
import builtins
import contextlib
import faulthandler
import io
import json
import os
import signal
import sys
from types import ModuleType
from unittest import mock

STAR_IMPORTS = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing")
PLAIN_IMPORTS = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
                 "statistics", "itertools", "functools", "operator", "io", "sys", "json")
PRELUDE = ("".join(f"from {m} import *\n" for m in STAR_IMPORTS) + "".join(f"import {m}\n" for m in PLAIN_IMPORTS)
           + "sys.setrecursionlimit(50000)\n")
_write = os.write


class TimeoutException(Exception):  # (lcb_runner's name: failures are told apart by it)
    pass


def _alarm(signum, frame):
    print("timeout occured: alarm went off")
    raise TimeoutException


class Channel:
    """Result lines on a duplicate of the original stdout; fd 1 goes to /dev/null."""

    def __init__(self):
        self.fd = os.dup(1)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)

    def send(self, record):
        data = (json.dumps(record) + "\n").encode()
        view = memoryview(data)
        while view:
            view = view[_write(self.fd, view):]


def encode(value, depth=0):
    """A typed, JSON-able form of a call's result (decoded outside into equal Python values)."""
    if depth > 1000:
        return ["o", "too deep"]
    if value is None:
        return ["n"]
    if isinstance(value, bool):
        return ["b", bool(value)]
    if isinstance(value, int):
        return ["i", hex(int(value))]
    if isinstance(value, float):
        return ["f", float.hex(value)]
    if isinstance(value, str):
        return ["s", str.__str__(value)]
    if isinstance(value, list):
        return ["l", [encode(v, depth + 1) for v in value]]
    if isinstance(value, tuple):
        return ["t", [encode(v, depth + 1) for v in value]]
    if isinstance(value, dict):
        return ["d", [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]]
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "shape", None) == ():
        return encode(value.item(), depth + 1)
    return ["o", type(value).__name__]


def guard():
    """lcb_runner's reliability_guard without a memory limit (the sandbox sets that)."""
    faulthandler.disable()
    builtins.quit = None
    os.environ["OMP_NUM_THREADS"] = "1"
    for name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
                 "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
                 "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
        setattr(os, name, None)
    import shutil
    import subprocess

    shutil.rmtree = shutil.move = shutil.chown = None
    subprocess.Popen = None
    builtins.help = None
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
        sys.modules[name] = None


def unwrap_main(code):
    """The body of a last top-level ``if __name__ == '__main__':`` joins the module (unchanged on any error)."""
    try:
        tree = ast.parse(code)
        last = tree.body[-1]
        if isinstance(last, ast.If) and ast.unparse(last.test).strip() == "__name__ == '__main__'":
            return ast.unparse(tree.body[:-1]) + "\n" + ast.unparse(last.body)
    except Exception:  # (as lcb_runner: any failure keeps the code)
        pass
    return code


def as_function(code):
    """Imports hoisted, all other top-level statements in ``def wrapped_function():`` (unchanged on any error)."""
    try:
        tree = ast.parse(code)
        imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
        rest = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        function = ast.FunctionDef(name="wrapped_function", args=ast.arguments(
            posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]), body=rest, decorator_list=[],
            lineno=-1)
        return PRELUDE + "\n" + ast.unparse(imports) + "\n" + ast.unparse(function)
    except Exception:
        return code


def compile_module(code, timeout):
    signal.alarm(timeout)
    try:
        module = ModuleType("tmp_sol", "")
        exec(code, module.__dict__)  # (running the answer is the point; the sandbox contains it)
        compiled = module.Solution() if "class Solution" in code else module
        assert compiled is not None
    finally:
        signal.alarm(0)
    return compiled


class StdinBuffer:
    def __init__(self, text):
        self.data = text.encode("utf-8")

    def read(self, *args):
        return self.data

    def readline(self, *args):
        return self.data.split(b"\n")[0] + b"\n"


class Stdin:
    """lcb_runner's stdin stand-in: read() and readlines() see the whole input, readline() walks it."""

    def __init__(self, text):
        self.inputs = text
        self._stringio = io.StringIO(text)
        self.buffer = StdinBuffer(text)

    def read(self, *args):
        return self.inputs

    def readline(self, *args):
        return self._stringio.readline(*args)

    def readlines(self, *args):
        return self.inputs.split("\n")

    def __getattr__(self, name):
        return getattr(self._stringio, name)


def call_with_input(function, text):
    """function() with the test input as stdin and open(); SystemExit ends it normally."""
    lines = iter(text.split("\n"))
    stand_in = Stdin(text)
    with mock.patch("sys.stdin.read", lambda *a: text), \
            mock.patch("sys.stdin.readlines", lambda *a: text.split("\n")), \
            mock.patch("sys.stdin.readline", lambda *a: next(lines)), \
            mock.patch("sys.stdin", stand_in), \
            mock.patch("builtins.open", mock.mock_open(read_data=text)), contextlib.suppress(SystemExit):
        function()


def failure(error):
    try:
        text = repr(error)
    except BaseException:
        text = type(error).__name__
    return "timeout" if "timeoutexception" in text.lower() else "error: " + text[:300]


def run_stdin(channel, code, inputs, timeout):
    compiled = compile_module(as_function(unwrap_main(code)), timeout)
    function = getattr(compiled, "wrapped_function", None)
    if function is None:
        channel.send({"err": "no wrapped_function"})
        return
    for index, text in enumerate(inputs):
        captured = io.StringIO()
        captured.close = lambda x: 1
        saved = sys.stdout
        sys.stdout = captured
        signal.alarm(timeout)
        faulthandler.enable()
        try:
            call_with_input(function, text)
            signal.alarm(0)
        except BaseException as error:  # (every failure of the answer is a failed test)
            signal.alarm(0)
            sys.stdout = saved
            channel.send({"t": index, "err": failure(error)})
            return
        finally:
            signal.alarm(0)
            faulthandler.disable()
            sys.stdout = saved
        channel.send({"t": index, "out": captured.getvalue()})
    channel.send({"done": len(inputs)})


def run_call(channel, code, fn_name, inputs, timeout):
    compiled = compile_module(PRELUDE + "\n\n" + code, timeout)
    method = getattr(compiled, fn_name, None) if hasattr(compiled, fn_name) else None
    if method is None:
        channel.send({"err": f"no function {fn_name}"})
        return
    arguments = [[json.loads(line) for line in text.split("\n")] for text in inputs]
    for index, args in enumerate(arguments):
        signal.alarm(timeout)
        faulthandler.enable()
        try:
            value = method(*args)
            signal.alarm(0)
            if isinstance(value, tuple):
                value = list(value)
            record = {"t": index, "val": encode(value)}
        except BaseException as error:
            signal.alarm(0)
            channel.send({"t": index, "err": failure(error)})
            return
        finally:
            signal.alarm(0)
            faulthandler.disable()
        channel.send(record)
    channel.send({"done": len(inputs)})


def main(argv):
    with open(argv[1], encoding="utf-8") as handle:
        job = json.load(handle)
    channel = Channel()
    sys.set_int_max_str_digits(50000)
    signal.signal(signal.SIGALRM, _alarm)
    guard()
    try:
        if job["fn_name"] is None:
            run_stdin(channel, job["code"], job["inputs"], job["timeout"])
        else:
            run_call(channel, job["code"], job["fn_name"], job["inputs"], job["timeout"])
    except BaseException as error:  # (compilation or input failures: the answer fails)
        channel.send({"err": failure(error)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
