"""measurements/<system>/<benchmark>/<scenario>/user.conf: parsed as LoadGen does, applied below explicit settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.config import build_config
from harness.errors import ConfigError, InputError
from harness.measurements import measurements_dir, read_user_conf

REPO = Path(__file__).resolve().parents[3]


def _system(root: Path, lines: str, scenario: str = "Server") -> Path:
    system = root / "systems" / "box.json"
    system.parent.mkdir(parents=True)
    system.write_text("{}")
    folder = root / "measurements" / "box" / "llama2-70b-99.9" / scenario
    folder.mkdir(parents=True)
    (folder / "user.conf").write_text(lines)
    return system


def test_the_specific_line_wins_over_a_star_and_other_models_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "user.conf"
    path.write_text("# tuned\n*.Server.target_qps = 3\nllama2-70b.Server.target_qps = 12.5  # measured\n"
                    "*.*.min_duration = 700000\ngptj.Server.target_qps = 99\nllama2-70b.Offline.target_qps = 40\n"
                    "llama2-70b.*.coalesce_queries = 1\n")
    assert read_user_conf(path, ("llama2-70b",), "Server") == {"target_qps": 12.5, "min_duration": 700000,
                                                                "server_coalesce_queries": 1}
    assert read_user_conf(path, ("llama2-70b",), "Offline") == {"target_qps": 40, "min_duration": 700000,
                                                                 "server_coalesce_queries": 1}


@pytest.mark.parametrize(("line", "message"), [
    ("llama2-70b.Server.target_latency = 5", "sets 'target_latency'; the harness renders only target_qps"),
    ("llama2-70b.Server.target_qps = fast", "has value 'fast'; expected an integer or a number"),
    ("target_qps = 5", "expected <model>.<Scenario>.<key> = <number>"),
    ("llama2-70b.Server.target_qps 5", "expected <model>.<Scenario>.<key> = <number>"),
])
def test_a_bad_line_is_one_line_naming_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "user.conf"
    path.write_text(f"# first\n{line}\n")
    with pytest.raises(InputError) as caught:
        read_user_conf(path, ("llama2-70b",), "Server")
    assert f"{path} line 2" in caught.value.message and message in caught.value.message
    assert "\n" not in caught.value.message


def test_a_run_for_the_system_takes_the_tuned_values_below_explicit_ones(tmp_path: Path) -> None:
    system = _system(tmp_path, "llama2-70b.Server.target_qps = 12.5\nllama2-70b.Server.min_query_count = 100\n")
    config = build_config({"system": str(system), "scenario": "Server"})
    assert (config.loadgen.target_qps, config.loadgen.min_query_count) == (12.5, 100)
    explicit = build_config({"system": str(system), "scenario": "Server"}, ["loadgen.target_qps=20"])
    assert (explicit.loadgen.target_qps, explicit.loadgen.min_query_count) == (20, 100)
    record = explicit.measurements_record()
    assert record["system"] == "box" and record["user_conf"] == {"target_qps": 12.5, "min_query_count": 100}
    assert record["applied"] == {"min_query_count": 100}
    offline = build_config({"system": str(system), "scenario": "Offline"})  # no Offline folder: nothing applied
    assert offline.loadgen.target_qps is None and offline.measurements_record()["user_conf"] == {}


def test_interactive_reads_the_interactive_model_name(tmp_path: Path) -> None:
    system = _system(tmp_path, "llama2-70b.Server.target_qps = 9\nllama2-70b-interactive.Server.target_qps = 2\n",
                     "Interactive")
    assert build_config({"system": str(system), "scenario": "Interactive"}).loadgen.target_qps == 2


def test_a_missing_system_description_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected an existing systems/<id>.json file"):
        build_config({"system": str(tmp_path / "nope.json")})


def test_the_shipped_measurements_parse_for_their_systems(tmp_path: Path) -> None:
    folders = sorted((REPO / "measurements").glob("*/*/*/user.conf"))
    assert folders, "the project ships at least one measurements folder"
    shutil.copytree(REPO / "systems", tmp_path / "systems")
    shutil.copytree(REPO / "measurements", tmp_path / "measurements")
    for user_conf in folders:
        scenario, benchmark, system = user_conf.parent.name, user_conf.parents[1].name, user_conf.parents[2].name
        system_json = tmp_path / "systems" / f"{system}.json"
        assert json.loads(system_json.read_text())["system_type"]
        assert measurements_dir(system_json, benchmark, scenario).user_conf.is_file()
        config = build_config({"system": str(system_json), "benchmark": benchmark, "scenario": scenario})
        assert config.loadgen.target_qps is not None and config.loadgen.target_qps > 0


def test_the_manifest_says_which_values_came_from_the_folder(tmp_path: Path) -> None:
    from harness import run_record

    system = _system(tmp_path, "llama2-70b.Server.target_qps = 12.5\n")
    manifest = run_record.new_manifest(build_config({"system": str(system), "scenario": "Server"}), ["harness"])
    assert manifest.details["measurements"]["applied"] == {"target_qps": 12.5}
    assert manifest.details["measurements"]["dir"].endswith("measurements/box/llama2-70b-99.9/Server")
    assert "measurements" not in run_record.new_manifest(build_config({}), ["harness"]).details


def test_a_later_scenario_takes_that_scenarios_tuned_values(tmp_path: Path) -> None:
    from harness.config import apply_overrides, with_updates

    system = _system(tmp_path, "llama2-70b.Server.target_qps = 12.5\n")
    offline = build_config({"system": str(system)})  # the CLI builds first, then applies --scenario as an update
    assert offline.loadgen.target_qps is None
    assert with_updates(offline, {"scenario": "Server"}).loadgen.target_qps == 12.5
    assert apply_overrides(offline, ["scenario=Server"]).loadgen.target_qps == 12.5
    copied = offline.model_copy(update={"overwrite": True})  # not from its given mapping any more: its dump is used
    assert with_updates(copied, {"mode": "accuracy"}).overwrite is True
