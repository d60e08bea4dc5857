"""`harness run` flags are typed config updates, never `--set` text re-parsed as YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli._app import app
from harness.cli.commands import run_flag_updates
from harness.config import load_config, with_updates
from harness.console import run_cli
from harness.errors import ConfigError
from harness.types import Scenario, TestMode


@pytest.mark.parametrize("name", ["2024", "yes", "null", "1e3", "[a]", "~"])
def test_an_output_dir_name_stays_that_string(name: str) -> None:
    config = with_updates(load_config(None), run_flag_updates(output_dir=Path(name)))
    assert config.output_dir == name


def test_flags_left_out_change_nothing_and_given_ones_keep_their_types() -> None:
    base = load_config(None, ["output_dir=/keep", "distributed.replicas=3"])
    assert with_updates(base, run_flag_updates()) == base
    changed = with_updates(base, run_flag_updates(mode=TestMode.ACCURACY, scenario=Scenario.SERVER, overwrite=True,
                                                  replicas=2))
    assert (changed.mode, changed.scenario, changed.overwrite, changed.distributed.replicas, changed.output_dir) == (
        TestMode.ACCURACY, Scenario.SERVER, True, 2, "/keep")


def test_zero_replicas_is_refused_not_silently_one() -> None:
    with pytest.raises(ConfigError, match=r"distributed\.replicas: .* greater than or equal to 1 \(got 0\)"):
        with_updates(load_config(None), run_flag_updates(replicas=0))


def test_the_cli_refuses_zero_replicas_in_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(app, ["run", "--replicas", "0", "--set", "backend.kind=fake", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "distributed.replicas" in err and "(got 0)" in err and "Traceback" not in err


def test_a_run_writes_to_an_output_dir_named_null(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = run_cli(app, ["run", "--output-dir", "null", "--set", "backend.kind=fake", "--set", "dataset.max_samples=4",
                 "--no-progress"])
    assert code == 0  # the fake backend's short Offline run is VALID
    assert (tmp_path / "null" / "manifest.json").is_file() and not (tmp_path / "runs").exists()
