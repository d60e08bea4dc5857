"""The benchmark facts table equals the official checker's constants, round by round.

The checker of each round is read from the mlcommons/inference git mirror (MLPERF_INFERENCE_GIT): the tag scripts'
MODEL_CONFIG for v4.0-v5.1 (tools/submission/submission_checker.py) and the modular checker's constants.py at HEAD
for v6.0 and v6.1. The dictionaries are evaluated from the official source (no builtins), never copied here.
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.benchmarks.registry import BENCHMARK_NAMES, benchmark_facts, benchmarks_of_round
from harness.rounds import ROUNDS, round_spec

MIRROR = Path(os.environ.get("MLPERF_INFERENCE_GIT", "/work/.mirror/mlcommons+inference/repo"))
# Which official source states each round (tools/submission/...): tag script, or the modular checker at HEAD.
SOURCES = {"v4.0": ("v4.0", "submission_checker.py"), "v4.1": ("v4.1", "submission_checker.py"),
           "v5.0": ("v5.0", "submission_checker.py"), "v5.1": ("v5.1", "submission_checker.py"),
           "v6.0": ("HEAD", "submission_checker/constants.py"), "v6.1": ("HEAD", "submission_checker/constants.py")}
_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


def _constants(round_name: str) -> dict[str, Any]:
    """MODEL_CONFIG and LLM_LATENCY_LIMITS of the official source of a round (skips without the mirror)."""
    if not MIRROR.exists():
        pytest.skip(f"no mlcommons/inference git mirror at {MIRROR} (set MLPERF_INFERENCE_GIT)")
    tag, path = SOURCES[round_name]
    if (tag, path) not in _CACHE:
        text = subprocess.run(["git", "-C", str(MIRROR), "show", f"{tag}:tools/submission/{path}"],
                              capture_output=True, text=True, check=True).stdout
        found: dict[str, Any] = {}
        for node in ast.parse(text).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                    and node.targets[0].id in ("MODEL_CONFIG", "LLM_LATENCY_LIMITS"):
                code = compile(ast.Expression(node.value), path, "eval")
                found[node.targets[0].id] = eval(code, {"__builtins__": {}})  # the official constants, no builtins
        _CACHE[(tag, path)] = found
    return _CACHE[(tag, path)]


def _config(round_name: str) -> dict[str, Any]:
    config: dict[str, Any] = _constants(round_name)["MODEL_CONFIG"][round_name]
    return config


@pytest.mark.parametrize("round_name", ROUNDS)
def test_the_round_carries_exactly_our_benchmarks_of_it(round_name: str) -> None:
    models = set(_config(round_name)["models"])
    for name in BENCHMARK_NAMES:
        assert (name in models) == (name in benchmarks_of_round(round_name)), (round_name, name)


@pytest.mark.parametrize("round_name", ROUNDS)
def test_seeds_are_the_checkers(round_name: str) -> None:
    seeds = _config(round_name)["seeds"]
    ours = round_spec(round_name).seeds
    assert (seeds["qsl_rng_seed"], seeds["sample_index_rng_seed"], seeds["schedule_rng_seed"]) == (
        ours.qsl, ours.sample_index, ours.schedule)


def _pairs(flat: tuple[Any, ...]) -> list[tuple[str, float]]:
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


@pytest.mark.parametrize(("round_name", "name"),
                         [(r, n) for n in BENCHMARK_NAMES for r in benchmark_facts(n).rounds])
def test_facts_equal_the_checkers_constants(round_name: str, name: str) -> None:
    config, facts = _config(round_name), benchmark_facts(name, round_name)
    assert _pairs(config["accuracy-target"][name]) == [
        (m.pattern, m.lower) for m in facts.metrics if m.lower is not None]
    assert _pairs(config["accuracy-upper-limit"][name]) == [
        (m.pattern, m.upper) for m in facts.metrics if m.upper is not None]
    assert config["performance-sample-count"][name] == facts.performance_samples
    assert config.get("dataset-size", {}).get(name, facts.dataset_samples) == facts.dataset_samples
    assert config.get("accuracy-sample-count", {}).get(name, facts.dataset_samples) == facts.accuracy_samples
    for system_type in facts.system_types:
        required = config[f"required-scenarios-{system_type}"][name]
        optional = config.get(f"optional-scenarios-{system_type}", {}).get(name, [])
        assert set(required) == set(facts.required_scenarios[system_type])
        assert set(optional) == set(facts.one_of_scenarios.get(system_type, ()))
    assert {k: v for k, v in config["min-queries"][name].items() if k in facts.min_queries} == facts.min_queries
    for test in ("TEST06", "TEST07", "TEST09"):
        if f"models_{test}" in config:
            assert (name in config[f"models_{test}"]) == (test in facts.compliance_tests), test
    limits = _constants(round_name).get("LLM_LATENCY_LIMITS", {}).get(name)
    if limits is not None:  # v4.1 names its one (Server) limit "conversational"; v4.0 has no table
        stated = {_SCENARIO.get(s, s): (v["ttft"], v["tpot"]) for s, v in limits.items()}
        assert stated == {s: facts.latency[s].ns for s in stated}
        if round_spec(round_name).checker_family == "head":
            assert set(stated) == set(facts.latency)


_SCENARIO = {"conversational": "Server"}
