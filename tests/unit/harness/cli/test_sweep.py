"""`harness sweep`: levels run in order against the fake backend (a stand-in server), sweep.json and the level
directories; bad input is one line with exit 2, a failed level one line with exit 4 and the levels done stay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli._app import app
from harness.console import run_cli
from harness.errors import BackendError
from harness.sweep import run as sweep_run

FAKE = ["--set", "backend.kind=fake", "--set", "backend.output_tokens=5", "--set", "backend.delay_ms=1",
        "--set", "dataset.max_samples=4", "--no-progress"]


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_sweep_writes_one_directory_per_level_and_sweep_json(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["sweep", "--concurrency", "2,1", "--output", str(tmp_path / "s"), *FAKE])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((tmp_path / "s" / "sweep.json").read_text())
    assert [(lv["concurrency"], lv["status"], lv["completed"]) for lv in data["levels"]] == [(2, "completed", 4),
                                                                                            (1, "completed", 4)]
    for level in (1, 2):
        facts = json.loads((tmp_path / "s" / f"concurrency-{level}" / "level.json").read_text())
        assert (facts["concurrency"], facts["in_flight"], facts["status"], facts["samples"]) == (level, level,
                                                                                                 "completed", 4)
    assert (tmp_path / "s" / "config.yaml").is_file()
    assert "## Concurrency sweep: s" in out and f"figure: harness report {tmp_path / 's'}" in out
    assert "sweep: concurrency 2 (2 in flight):" in err and "tokens/s per user" in err


def test_the_closed_loop_never_has_more_than_the_level_in_flight(tmp_path: Path) -> None:
    assert run_cli(app, ["sweep", "--concurrency", "2", "--output", str(tmp_path / "s"), *FAKE[:-3],
                         "--set", "dataset.max_samples=9", "--no-progress"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "s" / "concurrency-2" / "samples.jsonl").read_text()
            .splitlines()]
    assert len(rows) == 9
    for row in rows:  # at the moment each request was issued, fewer than 2 others were outstanding
        outstanding = [o for o in rows if o is not row and o["issued_ns"] <= row["issued_ns"] < o["completed_ns"]]
        assert len(outstanding) < 2, (row, outstanding)


@pytest.mark.parametrize(("levels", "said"), [
    ("1,x", "'x' is not a positive integer"), ("0", "'0' is not a positive integer"),
    ("2,2", "2 is given twice"), ("", "'' is not a positive integer")])
def test_bad_levels_are_refused_in_one_line_with_exit_2(levels: str, said: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["sweep", "--concurrency", levels, "--output", str(tmp_path / "s"), *FAKE])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 2 and said in line and f"--concurrency {levels!r}" in line
    assert not (tmp_path / "s").exists()


def test_an_existing_sweep_is_not_replaced_without_overwrite(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s"
    out.mkdir()
    (out / "keep").write_text("x")
    code = run_cli(app, ["sweep", "--concurrency", "1", "--output", str(out), *FAKE])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 2 and f"sweep directory {out} already exists" in line and (out / "keep").exists()
    assert run_cli(app, ["sweep", "--concurrency", "1", "--output", str(out), "--overwrite", *FAKE]) == 0
    assert not (out / "keep").exists() and (out / "sweep.json").is_file()


def test_a_failed_level_stops_the_sweep_and_the_levels_done_stay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    real = sweep_run.run_level
    calls = []

    def second_fails(backend, dataset, in_flight, stops, progress):  # type: ignore[no-untyped-def]
        calls.append(in_flight)
        if len(calls) == 2:
            backend.stop()
            raise BackendError("http://h:8000: not ready (ClientConnectorError: refused)")
        return real(backend, dataset, in_flight, stops, progress)

    monkeypatch.setattr(sweep_run, "run_level", second_fails)
    out = tmp_path / "s"
    code = run_cli(app, ["sweep", "--concurrency", "1,2,4", "--output", str(out), *FAKE])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 4 and calls == [1, 2]
    assert line.startswith("error: concurrency level 2 failed: http://h:8000: not ready") and str(out) in line
    levels = json.loads((out / "sweep.json").read_text())["levels"]
    assert [(lv["concurrency"], lv["status"]) for lv in levels] == [(1, "completed"), (2, "failed")]
    assert "not ready" in levels[1]["error"] and not (out / "concurrency-4").exists()
    assert len((out / "concurrency-1" / "samples.jsonl").read_text().splitlines()) == 4


def test_an_unreachable_url_fails_the_first_level_naming_it(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["sweep", "--concurrency", "1", "--urls", "http://127.0.0.1:9", "--output",
                         str(tmp_path / "s"), "--set", "backend.ready_timeout_s=1", "--set", "dataset.max_samples=2",
                         "--no-progress"])
    line = _one_line_error(capsys.readouterr().err)
    assert code == 4 and "concurrency level 1 failed: " in line and "http://127.0.0.1:9" in line
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["levels"][0]["status"] == "failed"


def test_urls_make_an_endpoint_config_whose_keys_set_can_then_change(tmp_path: Path) -> None:
    from harness.cli.commands import load_config
    from harness.config import apply_overrides

    config = apply_overrides(sweep_run.sweep_config(load_config(None), ["http://a:1", "http://b:2"]),
                             ["backend.read_timeout_s=7"])
    assert config.backend.kind == "endpoint" and tuple(config.backend.urls) == ("http://a:1", "http://b:2")
    level = sweep_run.level_config(config, 3)
    assert (level.backend.concurrency, level.backend.stream, sweep_run.in_flight(config, 3)) == (3, True, 6)
    assert level.backend.read_timeout_s == 7
