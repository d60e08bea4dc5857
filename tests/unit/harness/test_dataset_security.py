"""Hostile dataset pickles: every protocol, dotted names, allowed-module tricks; nothing runs, one line, exit 2."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from harness.cli import main
from harness.config import build_config
from harness.dataset import load_dataset, load_references, read_openorca_pickle
from harness.errors import InputError
from tests.conftest import REPO

PROTOCOLS = range(pickle.HIGHEST_PROTOCOL + 1)


def _marker_command(marker: Path) -> str:
    return f"touch {marker}"


class _Reduce:
    """An object whose unpickling calls target(*args)."""

    def __init__(self, target: Any, *args: Any) -> None:
        self.target, self.args = target, args

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.target, self.args


def _hostile(marker: Path) -> dict[str, _Reduce]:
    code = f"__import__('os').system('touch {marker}')"
    return {
        "os.system": _Reduce(os.system, _marker_command(marker)),
        "builtins.eval": _Reduce(builtins.eval, code),
        "builtins.exec": _Reduce(builtins.exec, code),
        "subprocess.Popen": _Reduce(subprocess.Popen, ["touch", str(marker)]),
        "pandas.eval": _Reduce(pd.eval, "1+1"),
        "pandas.read_pickle": _Reduce(pd.read_pickle, "/etc/passwd"),
        "numpy.load": _Reduce(np.load, "/etc/passwd"),
        "builtins.getattr": _Reduce(getattr, _Reduce(__import__, "os"), "system"),
    }


def _issue_reproduction(marker: Path) -> bytes:
    """Issue #14's pickle: protocol 4 GLOBAL with the dotted name __builtins__.get under pandas.core.frame."""
    return (b"\x80\x04cpandas.core.frame\n__builtins__.get\n(Veval\ntR(V__import__(\"os\").system(\"touch "
            + str(marker).encode() + b"\")\ntR.")


def _stack_global(module: str, name: str, marker: Path) -> bytes:
    """The same attack through STACK_GLOBAL (protocol 4/5 framing), with the module/name pushed as strings."""
    def short(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw

    code = f"__import__('os').system('touch {marker}')"
    return (b"\x80\x04" + short(module) + short(name) + b"\x93" + short("eval") + b"\x85R"
            + short(code) + b"\x85R.")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_every_hostile_global_is_refused_at_every_protocol(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "PWNED"
    for label, payload in _hostile(marker).items():
        path = tmp_path / f"{label}.pkl"
        # Nested inside an otherwise normal structure, as a real attack would be.
        path.write_bytes(pickle.dumps({"tok_input": [[1]], "output": [payload]}, protocol=protocol))
        with pytest.raises(InputError, match="refusing to load") as err:
            read_openorca_pickle(path)
        assert "\n" not in err.value.message
        assert not marker.exists(), label


@pytest.mark.parametrize(("module", "name"), [
    ("pandas.core.frame", "__builtins__.get"), ("pandas.core.frame", "DataFrame.__init__.__globals__.get"),
    ("numpy", "dtype.__class__"), ("pandas.core.series", "Series.to_pickle"), ("pandas.core.frame", "eval"),
    ("pandas.core.frame", "DataFrame.eval"), ("pandas.core.frame", "__builtins__"), ("copyreg", "__builtins__"),
    ("pandas.io.pickle", "read_pickle"), ("numpy.core.multiarray", "__builtins__"), ("builtins", "eval"),
])
def test_dotted_and_dunder_names_under_allowed_modules_are_refused(tmp_path: Path, module: str, name: str) -> None:
    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_stack_global(module, name, marker))
    with pytest.raises(InputError, match="refusing to load"):
        read_openorca_pickle(path)
    assert not marker.exists()


def test_issue_reproduction_through_every_cli_that_reads_a_dataset(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    evil = tmp_path / "x.pkl"
    evil.write_bytes(_issue_reproduction(marker))
    log = tmp_path / "mlperf_log_accuracy.json"
    log.write_text("[]\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (["dataset", "info", str(evil)],
                 ["evaluate", "--accuracy-log", str(log), "--dataset", str(evil), "--no-progress"],
                 ["run", "--set", f"dataset.path={evil}", "--set", "backend.kind=fake", "--no-progress",
                  "--output-dir", str(tmp_path / "run")]):
        done = subprocess.run([sys.executable, "-m", "harness", *argv], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, (argv, done.stderr)
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ") and "refusing to load" in done.stderr.splitlines()[0]
        assert not marker.exists(), argv


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_real_dataframe_loads_at_every_protocol(tmp_path: Path, protocol: int) -> None:
    frame = pd.DataFrame({
        "tok_input": [[1, 2, 3], np.array([4, 5], dtype=np.int64), [6]],
        "output": ["a.", "b.", "c."],
        "tok_input_length": [3, 2, 1],
        "ratio": [0.5, 1.0, 1.5],
        "flag": [True, False, True],
        "origin": pd.Categorical(["cot", "flan", "cot"]),
        "text": pd.array(["x", "y", None], dtype="string"),
    }, index=pd.RangeIndex(3))
    path = tmp_path / "orca.pkl"
    path.write_bytes(pickle.dumps(frame, protocol=protocol))
    loaded = read_openorca_pickle(path)
    assert loaded.equals(frame)
    data = load_dataset(build_config({"dataset": {"path": str(path)}}), tokenizer=None)
    assert [s.input_ids for s in data.samples] == [(1, 2, 3), (4, 5), (6,)]


def test_json_directory_empty_and_unreadable_datasets_get_their_own_message(tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('[{"tok_input": [1], "output": "x"}]')
    with pytest.raises(InputError, match="is a JSON file"):
        read_openorca_pickle(tmp_path / "data.json")
    with pytest.raises(InputError, match="is a directory"):
        read_openorca_pickle(tmp_path)
    (tmp_path / "empty.pkl").write_bytes(b"")
    with pytest.raises(InputError, match="is empty"):
        read_openorca_pickle(tmp_path / "empty.pkl")
    (tmp_path / "trunc.pkl").write_bytes(pickle.dumps(pd.DataFrame({"tok_input": [[1]], "output": ["x"]}))[:40])
    with pytest.raises(InputError, match="not a readable pandas pickle"):
        read_openorca_pickle(tmp_path / "trunc.pkl")


@pytest.mark.parametrize(("column", "value", "message"), [
    ("output", None, "expected the reference answer as text"),
    ("output", 3.5, "expected the reference answer as text"),
    ("tok_input", [1, "2"], "expected non-negative integer token ids"),
    ("tok_input", [1, 2.5], "expected non-negative integer token ids"),
    ("tok_input", [1, -3], "expected non-negative integer token ids"),
    ("tok_input", [], "is empty"),
    ("tok_input", "1 2 3", "expected a list of token ids"),
])
def test_malformed_rows_are_named(tmp_path: Path, column: str, value: Any, message: str) -> None:
    rows = {"tok_input": [[1, 2], [3]], "output": ["fine.", "also fine."]}
    rows[column] = [rows[column][0], value]
    path = tmp_path / "bad.pkl"
    pd.DataFrame(rows).to_pickle(path)
    with pytest.raises(InputError, match=message) as err:
        if column == "output":
            load_references(str(path))
        else:
            load_dataset(build_config({"dataset": {"path": str(path)}}), tokenizer=None)
    assert "sample 1" in err.value.message


def test_cli_dataset_info_on_a_directory_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["dataset", "info", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a directory" in err
