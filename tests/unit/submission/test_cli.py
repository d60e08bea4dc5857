"""`submission system validate | detect | schema` through main([...]): exit codes and messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from submission.cli import main
from tests.unit.submission.trees import SYSTEM

DATA = Path(__file__).resolve().parents[2] / "data" / "submission" / "h100-roce-node"


def _main(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    return int(exit_.value.code or 0)


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["system", "validate", str(SYSTEM)]) == 0
    assert capsys.readouterr().out.startswith("OK:")


def test_validate_lists_every_placeholder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "sys.json"
    path.write_text(json.dumps(json.loads(SYSTEM.read_text()) | {"cooling": "N/A", "framework": "TBD"}))
    assert _main(["system", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f'{path}: cooling is "N/A"; placeholders are refused; set e.g. "air-cooled"' in err
    assert "framework is \"TBD\"" in err
    assert "error: " in err and "Traceback" not in err


def test_detect_writes_json_lists_missing_and_never_overwrites(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "detected.json"
    args = ["system", "detect", "--output", str(out), "--sysfs-root", str(DATA / "sys"),
            "--proc-root", str(DATA / "proc")]
    assert _main(args) == 0
    data = json.loads(out.read_text())
    assert data["host_processor_model_name"] == "Intel(R) Xeon(R) Platinum 8480C"
    assert data["host_networking"] == "RoCE v2, 8x 400 Gb/s RDMA"
    assert "fill by hand: submitter, status" in capsys.readouterr().err
    assert _main(args) == 2


def test_schema_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["system", "schema"]) == 0
    assert len(json.loads(capsys.readouterr().out)["required"]) == 35
