"""A catalogue of bad inputs and faults across the three CLIs (issue #14, "beyond these"), table-driven.

Each case: one `error:` line naming what and the value seen, the documented exit code (2 bad input, 1 a
failed check), no traceback, and nothing written where the command was told to write. The CLIs run in this
process (fast); the run directories are real fake-backend runs (tests/unit/submission/trees.py).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.cli  # noqa: F401  (registers the commands)
from compliance.cli import app as compliance_app
from harness.cli._app import app as harness_app
from harness.console import run_cli
from submission.cli import app as submission_app
from tests.unit.submission import trees

APPS = {"harness": harness_app, "compliance": compliance_app, "submission": submission_app}
BOMB = "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 9) if p else ', '.join('x' * 9)}]\n"
               for p, k in zip(["", "a", "b", "c", "d", "e", "f"], "abcdefg", strict=True))
PKG = ("--submitter", "MyOrg", "--system", str(trees.SYSTEM), "--allow-unsubmittable")

# (case, tool, argv with {placeholders}, exit code, text the error line must hold)
CASES: list[tuple[str, str, tuple[str, ...], int, str]] = [
    ("config: empty file", "harness", ("config", "show", "--config", "{w}/empty.yaml"), 2, "is empty"),
    ("config: /dev/null", "harness", ("config", "show", "--config", "/dev/null"), 2, "is empty"),
    ("config: binary file", "harness", ("config", "show", "--config", "{w}/binary"), 2, "not text"),
    ("config: a YAML list", "harness", ("config", "show", "--config", "{w}/list.yaml"), 2, "holds a list"),
    ("config: unknown key", "harness", ("config", "show", "--config", "{w}/unknown.yaml"), 2, "unknown key 'bogus'"),
    ("config: string for an int", "harness", ("config", "show", "--config", "{w}/wrongtype.yaml"), 2,
     "generation.max_new_tokens: Input should be a valid integer"),
    ("config: int for an enum", "harness", ("config", "show", "--config", "{w}/scenario.yaml"), 2, "(got 5)"),
    ("config: YAML syntax error", "harness", ("config", "show", "--config", "{w}/syntax.yaml"), 2,
     "not valid YAML (line 2)"),
    ("config: duplicate key", "harness", ("config", "show", "--config", "{w}/dup.yaml"), 2,
     "key 'scenario' appears twice"),
    ("config: missing file", "harness", ("config", "show", "--config", "{w}/nope.yaml"), 2, "does not exist"),
    ("config: a directory", "harness", ("config", "show", "--config", "{w}"), 2, "is a directory"),
    ("config: symlink loop", "harness", ("config", "show", "--config", "{w}/loop"), 2, "symbolic links"),
    ("config: alias bomb", "harness", ("config", "show", "--config", "{w}/bomb.yaml"), 2, "unknown key 'a'"),
    ("--set: not a number", "harness", ("config", "show", "--set", "generation.max_new_tokens=abc"), 2, "(got 'abc')"),
    ("--set: negative", "harness", ("config", "show", "--set", "generation.max_new_tokens=-5"), 2, "(got -5)"),
    ("--set: huge integer", "harness", ("config", "show", "--set", "generation.max_new_tokens=" + "9" * 40), 2,
     "out of range; expected a 64-bit integer"),
    ("--set: unknown key", "harness", ("config", "show", "--set", "nothing.here=1"), 2, "unknown key 'nothing'"),
    ("--set: no '='", "harness", ("config", "show", "--set", "generation.max_new_tokens"), 2, "is not key.path=value"),
    ("--set: NaN rate", "harness", ("config", "show", "--set", "loadgen.target_qps=nan"), 2, "finite number"),
    ("--set: negative rate", "harness", ("config", "show", "--set", "loadgen.target_qps=-3"), 2, "greater than 0"),
    ("run: --replicas -1", "harness", ("run", "--replicas", "-1", "--set", "backend.kind=fake"), 2, "(got -1)"),
    ("run: unknown scenario", "harness", ("run", "--scenario", "Bogus"), 2, "'Bogus'"),
    ("run: output dir is a file", "harness", ("run", "--output-dir", "{w}/empty.yaml", "--set", "backend.kind=fake"),
     2, "is a file"),
    ("run: output dir under a file", "harness", ("run", "--output-dir", "{w}/empty.yaml/run", "--set",
                                                 "backend.kind=fake"), 2, "Not a directory"),
    ("run: newline in output dir", "harness", ("run", "--output-dir", "{w}/dä\nx/run", "--set", "backend.kind=fake"),
     2, "holds a control character"),
    ("dataset: empty file", "harness", ("dataset", "info", "{w}/empty.pkl"), 2, "is empty"),
    ("dataset: binary garbage", "harness", ("dataset", "info", "{w}/binary"), 2, "not a readable pandas pickle"),
    ("dataset: a directory", "harness", ("dataset", "info", "{w}"), 2, "is a directory"),
    ("dataset: pickle of a list", "harness", ("dataset", "info", "{w}/list.pkl"), 2, "holds a list"),
    ("dataset: truncated pickle", "harness", ("dataset", "info", "{w}/truncated.pkl"), 2, "truncated"),
    ("evaluate: empty log", "harness", ("evaluate", "--accuracy-log", "{w}/empty.json"), 2, "is empty"),
    ("evaluate: truncated log", "harness", ("evaluate", "--accuracy-log", "{w}/truncated.json"), 2,
     "may be truncated"),
    ("evaluate: JSON object", "harness", ("evaluate", "--accuracy-log", "{w}/object.json"), 2, "holds a dict"),
    ("evaluate: log is a directory", "harness", ("evaluate", "--accuracy-log", "{w}"), 2, "is a directory"),
    ("evaluate: odd hex", "harness", ("evaluate", "--accuracy-log", "{w}/hex.json"), 2, "seen 'ABC'"),
    ("evaluate: negative qsl_idx", "harness", ("evaluate", "--accuracy-log", "{w}/negative.json"), 2,
     "qsl_idx -1"),
    ("evaluate: unknown dtype", "harness", ("evaluate", "--accuracy-log", "{acc}/mlperf_log_accuracy.json",
                                            "--dtype", "int13"), 2, "'int13'"),
    ("evaluate: output dir is a file", "harness", ("evaluate", "--accuracy-log", "{acc}/mlperf_log_accuracy.json",
                                                   "--output-dir", "{w}/empty.yaml"), 2, "is a file"),
    ("report: missing run", "harness", ("report", "{w}/none"), 2, "is not a directory"),
    ("report: truncated manifest", "harness", ("report", "{truncated}"), 2, "may be truncated"),
    ("report: manifest of a newer schema", "harness", ("report", "{newer}"), 2, "schema_version 99 is newer"),
    ("pipeline: empty file", "harness", ("pipeline", "--config", "{w}/empty.yaml"), 2, "is empty"),
    ("pipeline: a YAML list", "harness", ("pipeline", "--config", "{w}/list.yaml"), 2, "holds a list"),
    ("verify: missing dir", "compliance", ("verify", "TEST06", "{w}/none"), 2, "is not a directory"),
    ("verify: a file", "compliance", ("verify", "TEST06", "{w}/empty.yaml"), 2, "is not a directory"),
    ("verify: unknown test", "compliance", ("verify", "TEST99", "{perf}"), 2, "'TEST99'"),
    ("verify: not a TEST06 run", "compliance", ("verify", "TEST06", "{perf_copy}"), 2, "TEST06"),
    ("compliance run: binary config", "compliance", ("run", "TEST06", "--config", "{w}/binary"), 2, "not text"),
    ("system: empty file", "submission", ("system", "validate", "{w}/empty.json"), 2, "not valid JSON"),
    ("system: binary file", "submission", ("system", "validate", "{w}/binary"), 2, "not valid JSON"),
    ("system: JSON list", "submission", ("system", "validate", "{w}/list.json"), 2, "holds a JSON list"),
    ("system: negative count", "submission", ("system", "validate", "{w}/negative-system.json"), 2, "1 problem"),
    ("system: huge count", "submission", ("system", "validate", "{w}/huge-system.json"), 2, "1 problem"),
    ("system: a directory", "submission", ("system", "validate", "{w}"), 2, "is a directory"),
    ("detect: output exists", "submission", ("system", "detect", "--output", "{w}/empty.yaml"), 2, "already exists"),
    ("detect: output under a file", "submission", ("system", "detect", "--output", "{w}/empty.yaml/s.json"), 2,
     "is not a directory"),
    ("package: output inside a run", "submission", ("package", "{perf}", "{acc}", *PKG, "--output", "{perf}/sub"), 2,
     "is inside run directory"),
    ("package: same run twice", "submission", ("package", "{perf}", "{perf}/.", *PKG, "--output", "{w}/o1"), 2,
     "is given twice"),
    ("package: truncated manifest", "submission", ("package", "{truncated}", "{acc}", *PKG, "--output", "{w}/o2"), 2,
     "may be truncated"),
    ("package: newer manifest schema", "submission", ("package", "{newer}", "{acc}", *PKG, "--output", "{w}/o3"), 2,
     "schema_version 99"),
    ("package: output is a file", "submission", ("package", "{perf}", "{acc}", *PKG, "--output", "{w}/empty.yaml"),
     2, "already exists"),
    ("package: submitter '../evil'", "submission", ("package", "{perf}", "{acc}", "--submitter", "../evil",
                                                   *PKG[2:], "--output", "{w}/o4"), 2, "'../evil'"),
    ("package: newline in submitter", "submission", ("package", "{perf}", "{acc}", "--submitter", "Org\nX",
                                                    *PKG[2:], "--output", "{w}/o5"), 2, "'Org\\nX'"),
    ("package: system missing", "submission", ("package", "{perf}", "{acc}", "--submitter", "MyOrg", "--system",
                                              "{w}/nosys.json", "--output", "{w}/o6"), 2, "does not exist"),
    ("package: run is a file", "submission", ("package", "{w}/empty.yaml", *PKG, "--output", "{w}/o7"), 2,
     "is not a directory"),
    ("package: empty run dir", "submission", ("package", "{w}/emptydir", *PKG, "--output", "{w}/o8"), 2,
     "manifest.json is missing"),
    ("package: binary measurements", "submission", ("package", "{perf}", "{acc}", *PKG, "--measurements",
                                                   "{w}/binary", "--output", "{w}/o9"), 2, "cannot be read as JSON"),
    ("package: unknown round", "submission", ("package", "{perf}", "{acc}", *PKG, "--round", "v9.9", "--output",
                                             "{w}/o10"), 2, "'v9.9'"),
    ("package: link out of the run", "submission", ("package", "{linked}", "{acc}", *PKG, "--output", "{w}/o11"), 2,
     "outside"),
    ("check: missing root", "submission", ("check", "{w}/none"), 2, "is not a directory"),
    ("check: a file", "submission", ("check", "{w}/empty.yaml"), 2, "is not a directory"),
    ("check: empty root", "submission", ("check", "{w}/emptydir"), 1, "no open/ or closed/ directory"),
]


def _write(root: Path, name: str, data: str | bytes) -> None:
    path = root / name
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)


def _run_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    runs = trees.fake_runs(("Offline",))
    root = tmp_path_factory.mktemp("bad-inputs")
    work = root / "w"
    work.mkdir()
    files: dict[str, str | bytes] = {
        "empty.yaml": "", "binary": bytes(range(256)) * 4, "list.yaml": "- a\n- b\n", "unknown.yaml": "bogus: 1\n",
        "wrongtype.yaml": "generation:\n  max_new_tokens: lots\n", "scenario.yaml": "scenario: 5\n",
        "syntax.yaml": "a: [1, 2\n\tb: c\n", "dup.yaml": "scenario: Offline\nscenario: Server\n", "bomb.yaml": BOMB,
        "empty.pkl": b"", "list.pkl": pickle.dumps([1, 2, 3]), "truncated.pkl": pickle.dumps(list(range(100)))[:50],
        "empty.json": "", "truncated.json": '[{"seq_id": 0, "qsl_idx": 0, "data": "0100',
        "object.json": '{"a": 1}', "hex.json": '[{"seq_id": 0, "qsl_idx": 0, "data": "ABC"}]',
        "negative.json": '[{"seq_id": 0, "qsl_idx": -1, "data": "01000000"}]', "list.json": "[1]",
    }
    for name, data in files.items():
        _write(work, name, data)
    os.symlink(work / "loop", work / "loop")
    (work / "emptydir").mkdir()
    system = json.loads(trees.SYSTEM.read_text())
    _write(work, "negative-system.json", json.dumps(system | {"number_of_nodes": -3}))
    _write(work, "huge-system.json", json.dumps(system | {"accelerators_per_node": 10**30}))
    perf, acc = runs[("Offline", "performance")], runs[("Offline", "accuracy")]
    truncated = _run_copy(perf, root / "truncated")
    (truncated / "manifest.json").write_text((truncated / "manifest.json").read_text()[:100])
    newer = _run_copy(perf, root / "newer")
    manifest = json.loads((newer / "manifest.json").read_text())
    (newer / "manifest.json").write_text(json.dumps(manifest | {"schema_version": 99}))
    linked = _run_copy(perf, root / "linked")
    (linked / "user.conf").unlink()
    os.symlink("/etc/hostname", linked / "user.conf")
    perf_copy = _run_copy(perf, root / "perf-copy")
    return {"w": str(work), "perf": str(perf), "acc": str(acc), "truncated": str(truncated), "newer": str(newer),
            "linked": str(linked), "perf_copy": str(perf_copy), "root": str(root)}


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("tool", "argv", "code", "text"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_the_exit_code_and_writes_nothing(places: dict[str, str], tool: str,
                                                                   argv: tuple[str, ...], code: int, text: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(places["root"])
    monkeypatch.chdir(root / "w")
    before = _snapshot(root), _snapshot(Path(places["perf"])), _snapshot(Path(places["acc"]))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        exit_code = run_cli(APPS[tool], [arg.format(**places) for arg in argv])
    stderr = err.getvalue()
    assert "Traceback" not in stderr and "Traceback" not in out.getvalue(), stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert exit_code == code, stderr
    assert text in errors[0], errors[0]
    after = _snapshot(root), _snapshot(Path(places["perf"])), _snapshot(Path(places["acc"]))
    assert after == before  # nothing half-written: no tree, no staging, no run dir, no file in a run


def test_ctrl_c_while_packaging_exits_130_and_leaves_nothing(places: dict[str, str], tmp_path: Path) -> None:
    """SIGINT in the middle of `submission package` (big accuracy logs make it take a while): exit 130, one line,
    no tree, no originals, no hidden staging directory beside the output."""
    big = _run_copy(Path(places["acc"]), tmp_path / "big-accuracy")
    log = big / "mlperf_log_accuracy.json"
    entries = json.loads(log.read_text())
    log.write_text(json.dumps(entries * 4000))  # ~ hundreds of MB to copy and truncate
    output = tmp_path / "out" / "tree"
    env = {**os.environ, "PYTHONPATH": str(trees.REPO)}
    process = subprocess.Popen([sys.executable, "-m", "submission", "package", places["perf"], str(big), *PKG,
                                "--output", str(output)], env=env, text=True, stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list(output.parent.glob(".tree.staging-*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "packaging ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and len([x for x in stderr.splitlines() if x.startswith("error:")]) == 1, stderr
    assert sorted(p.name for p in output.parent.iterdir()) == [], list(output.parent.iterdir())
