"""Pipeline file validation, stage plan and --from/--only selection (harness/pipeline/spec.py, plan.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.pipeline.plan import Plan, build_plan, select
from harness.pipeline.spec import load_pipeline


def _plan(tmp_path: Path, **spec: object) -> Plan:
    data = {"set": ["backend.kind=fake"], "scenarios": ["Offline", "Server"], "output_dir": "out",
            "submission": {"submitter": "Org", "system": "systems/s.json"}, **spec}
    path = tmp_path / "pipeline.yaml"
    path.write_text(json.dumps(data))
    loaded, base = load_pipeline(path)
    return build_plan(loaded, base, path)


def test_stages_run_accuracy_performance_test06_per_scenario_then_package_and_check(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert [s.id for s in plan.stages] == [
        "llama2-70b-99.9/Offline/accuracy", "llama2-70b-99.9/Offline/performance", "llama2-70b-99.9/Offline/test06",
        "llama2-70b-99.9/Server/accuracy", "llama2-70b-99.9/Server/performance", "llama2-70b-99.9/Server/test06",
        "package", "check"]
    test06 = plan.stages[2]
    assert test06.argv[1:] == ("-m", "compliance", "run", "TEST06", "--config", str(test06.config_path),
                               "--scenario", "Offline", "--output-dir", str(test06.output))
    package = plan.stage("package")
    assert package is not None and str(tmp_path / "systems" / "s.json") in package.argv
    assert [a for a in package.argv if a.startswith(str(tmp_path / "out" / "runs"))] == \
        [str(s.output) for s in plan.run_stages]


def test_effective_configs_apply_overrides_per_scenario_and_stage_and_cache_only_accuracy(tmp_path: Path) -> None:
    plan = _plan(tmp_path, scenario_set={"Server": ["loadgen.target_qps=7"]},
                 stage_set={"performance": ["loadgen.min_duration=9"]})
    configs = {s.id: s.config for s in plan.run_stages}
    server_perf = configs["llama2-70b-99.9/Server/performance"]
    offline_acc = configs["llama2-70b-99.9/Offline/accuracy"]
    assert server_perf is not None and offline_acc is not None
    assert (server_perf.loadgen.target_qps, server_perf.loadgen.min_duration, server_perf.mode.value) == \
        (7, 9, "performance")
    assert (offline_acc.loadgen.target_qps, offline_acc.loadgen.min_duration, offline_acc.mode.value) == \
        (0.5, None, "accuracy")
    assert offline_acc.cache == str(tmp_path / "out" / "cache" / "llama2-70b-99.9" / "Offline" / "accuracy")
    assert server_perf.cache is None and server_perf.backend.kind == "fake" and server_perf.overwrite


def test_without_a_submission_section_package_and_check_are_left_out_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("scenarios: [Offline]\n")
    spec, base = load_pipeline(path)
    plan = build_plan(spec, base, path)
    assert [s.kind for s in plan.stages] == ["accuracy", "performance", "test06"]
    assert plan.notes and "submission" in plan.notes[0]
    assert plan.stages[0].config is not None and plan.stages[0].config.backend.kind == "hf"  # embedded default


@pytest.mark.parametrize(("selector", "expected"), [
    ("performance", ["Offline/performance", "Offline/test06", "Server/performance", "Server/test06", "package",
                     "check"]),
    ("Server", ["Server/accuracy", "Server/performance", "Server/test06", "package", "check"]),
    ("server/test06", ["Server/test06", "package", "check"]),
    ("llama2-70b-99.9/Server/test06", ["Server/test06", "package", "check"]),
    ("package", ["package", "check"]),
])
def test_from_keeps_the_named_stage_later_kinds_and_the_global_stages(tmp_path: Path, selector: str,
                                                                       expected: list[str]) -> None:
    kept = select(_plan(tmp_path), start=selector)
    assert [s.id.removeprefix("llama2-70b-99.9/") for s in kept] == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("accuracy", ["Offline/accuracy", "Server/accuracy"]),
    ("Offline/performance", ["Offline/performance"]),
    ("Server", ["Server/accuracy", "Server/performance", "Server/test06"]),
    ("check", ["check"]),
])
def test_only_keeps_exactly_the_named_stages(tmp_path: Path, selector: str, expected: list[str]) -> None:
    assert [s.id.removeprefix("llama2-70b-99.9/") for s in select(_plan(tmp_path), only=selector)] == expected


def test_an_unknown_selector_names_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'Interactive' is not a stage kind, scenario or benchmark") as caught:
        select(_plan(tmp_path), only="Interactive/accuracy")
    assert caught.value.hint is not None and "Offline" in caught.value.hint


@pytest.mark.parametrize(("content", "message"), [
    ("scenarios: [Offline, Offline]\n", "scenarios: Value error, lists a value twice"),
    ("backend: {kind: fake}\n", "unknown key 'backend'; pipeline keys: run_config, set,"),
    ("stage_set: {package: []}\n", "expected run stage kinds: accuracy, performance, test06"),
    ("stages: [package]\n", "stages package need a submission: section"),
])
def test_a_bad_pipeline_file_is_one_clear_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert message in caught.value.message and str(path) in caught.value.message


def test_a_bad_run_override_names_the_stage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pipeline stage llama2-70b-99.9/Server/accuracy: generation.max_new"):
        _plan(tmp_path, scenario_set={"Server": ["generation.max_new_tokens=1"]})


def test_code_url_and_commit_reach_submission_package(tmp_path: Path) -> None:
    url, commit = "https://github.com/example/mlperf-llm-harness", "0123456789abcdef0123456789abcdef01234567"
    plan = _plan(tmp_path, submission={"submitter": "Org", "system": "systems/s.json", "code_url": url,
                                       "code_commit": commit, "package_args": ["--allow-unsubmittable"]})
    package = plan.stage("package")
    assert package is not None
    argv = list(package.argv)
    assert argv[argv.index("--code-url"):argv.index("--code-url") + 4] == ["--code-url", url, "--code-commit", commit]
    assert argv[-1] == "--allow-unsubmittable"
    unpinned = _plan(tmp_path).stage("package")
    assert unpinned is not None and "--code-url" not in unpinned.argv


@pytest.mark.parametrize(("submission", "message"), [
    ({"code_url": "https://github.com/o/r"}, "code_url and code_commit go together"),
    ({"code_url": "http://github.com/o/r", "code_commit": "abcdef1"}, "expected a public https:// repository URL"),
    ({"code_url": "https://github.com/o/r", "code_commit": "main"}, "expected a git commit hash"),
    ({"code_url": "https://github.com/o/r", "code_commit": "abcdef1", "package_args": ["--code-url", "x"]},
     "package_args repeats --code-url"),
])
def test_a_bad_code_pin_is_refused_when_the_pipeline_file_is_read(tmp_path: Path, submission: dict[str, object],
                                                                  message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps({"submission": {"submitter": "Org", "system": "s.json", **submission}}))
    with pytest.raises(ConfigError) as caught:
        load_pipeline(path)
    assert message in caught.value.message and "\n" not in caught.value.message


def test_gpt_oss_plans_test07_and_test09_instead_of_test06(tmp_path: Path) -> None:
    plan = _plan(tmp_path, benchmarks=["gpt-oss-120b"], scenarios=["Offline"],
                 set=["backend.kind=fake", "round=v6.1"])
    assert [s.id for s in plan.run_stages] == [
        "gpt-oss-120b/Offline/accuracy", "gpt-oss-120b/Offline/performance", "gpt-oss-120b/Offline/test07",
        "gpt-oss-120b/Offline/test09"]
    for stage, test in zip(plan.run_stages[2:], ("TEST07", "TEST09"), strict=True):
        assert stage.argv[1:6] == ("-m", "compliance", "run", test, "--config")
        assert stage.output == tmp_path / "out" / "runs" / "gpt-oss-120b" / "Offline" / test.lower()
