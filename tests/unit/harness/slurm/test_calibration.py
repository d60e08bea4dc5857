"""The calibration pickle becomes the local dataset quantize.py reads: train.jsonl with a text column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import app
from harness.console import run_cli
from harness.errors import InputError
from harness.slurm.calibration import write_calibration_dir
from tests.unit.harness.test_dataset import _openorca_frame


def test_the_prompts_are_written_in_order_as_the_text_column(tmp_path: Path) -> None:
    _openorca_frame(7).to_pickle(tmp_path / "calib.pkl")
    assert write_calibration_dir(tmp_path / "calib.pkl", tmp_path / "out") == 7
    rows = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert rows == [{"text": f"<s>[INST] Question {i}? [/INST]"} for i in range(7)]


def test_the_cli_writes_it_and_a_frame_without_prompts_is_refused(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _openorca_frame(3).to_pickle(tmp_path / "calib.pkl")
    assert run_cli(app, ["dataset", "calibration", str(tmp_path / "calib.pkl"), str(tmp_path / "c")]) == 0
    assert "3 calibration prompts" in " ".join(capsys.readouterr().out.split())
    _openorca_frame(3).drop(columns=["input"]).to_pickle(tmp_path / "bare.pkl")
    with pytest.raises(InputError, match="no 'input' column"):
        write_calibration_dir(tmp_path / "bare.pkl", tmp_path / "d")
