"""submission.layout: paths per round."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from submission.layout import Tree, check_name, round_layout


def test_v40_paths() -> None:
    tree = Tree(Path("/r"), "Org", round_layout("v4.0"))
    assert tree.measurements_json("s", "llama2-70b-99", "Offline", "impl") == Path(
        "/r/open/Org/measurements/s/llama2-70b-99/Offline/s_impl_Offline.json")
    assert tree.compliance("s", "llama2-70b-99", "Server") == Path(
        "/r/open/Org/compliance/s/llama2-70b-99/Server/TEST06")
    assert tree.code("llama2-70b-99", "impl") == Path("/r/open/Org/code/llama2-70b-99/impl")
    assert tree.layout.measure_files == ("mlperf.conf", "user.conf", "README.md")


def test_v60_paths_move_into_results_and_src() -> None:
    tree = Tree(Path("/r"), "Org", round_layout("v6.0"))
    scenario = Path("/r/open/Org/results/s/llama2-70b-99/Interactive")
    assert tree.measurements_json("s", "llama2-70b-99", "Interactive", "impl") == scenario / "measurements.json"
    assert tree.compliance("s", "llama2-70b-99", "Interactive") == scenario / "TEST06"
    assert tree.code("llama2-70b-99", "impl") == Path("/r/open/Org/src/llama2-70b-99/impl")


def test_interactive_exists_from_v51() -> None:
    assert "Interactive" not in round_layout("v5.0").scenarios
    assert "Interactive" in round_layout("v5.1").scenarios


def test_unknown_round_and_bad_names_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="v3.1"):
        round_layout("v3.1")
    with pytest.raises(ConfigError, match="spaces"):
        check_name("--submitter", "My Org")


def test_loadgen_file_names_have_one_definition() -> None:
    """The tree's file lists are harness.artifacts' names, and no submission module spells one itself."""
    from harness import artifacts
    from submission import layout

    assert layout.PERF_REQUIRED == (artifacts.SUMMARY, artifacts.DETAIL)
    assert layout.ACCURACY_FILES == (artifacts.SUMMARY, artifacts.DETAIL, artifacts.ACCURACY_TXT,
                                     artifacts.ACCURACY_LOG)
    assert set(layout.PERF_OPTIONAL) >= {artifacts.ACCURACY_LOG, artifacts.TRACE}
    names = [*artifacts.LOADGEN_FILES, artifacts.ACCURACY_TXT, "verify_accuracy.txt"]
    package = Path(layout.__file__).parent
    spelt = [f"{path.relative_to(package)}: {name}" for path in sorted(package.rglob("*.py"))
             for name in names for quote in ('"', "'") if f"{quote}{name}{quote}" in path.read_text()]
    assert spelt == [], "use harness.artifacts / compliance.results constants instead of string literals"
