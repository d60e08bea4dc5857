"""The benchmark registry: names, rounds, per-round facts, and the refusal of a benchmark its round lacks."""

from __future__ import annotations

import pytest

from harness.benchmarks.registry import (
    BENCHMARK_NAMES,
    DEFAULT_BENCHMARK,
    benchmark_facts,
    benchmarks_of_round,
    check_in_round,
)
from harness.config import build_config
from harness.errors import ConfigError
from harness.rounds import DEFAULT_ROUND, ROUNDS


def test_every_round_has_the_default_benchmark() -> None:
    assert DEFAULT_BENCHMARK in BENCHMARK_NAMES
    for round_name in ROUNDS:
        assert DEFAULT_BENCHMARK in benchmarks_of_round(round_name)


def test_llama2_70b_99_left_the_field_in_v6_1() -> None:
    assert "llama2-70b-99" in benchmarks_of_round("v6.0")
    assert "llama2-70b-99" not in benchmarks_of_round("v6.1")
    with pytest.raises(ConfigError) as caught:
        check_in_round("llama2-70b-99", "v6.1")
    assert "\n" not in caught.value.message
    assert "not part of round v6.1" in caught.value.message and "v6.0" in caught.value.message
    assert "llama2-70b-99.9" in (caught.value.hint or "")


def test_the_run_config_refuses_it_too() -> None:
    with pytest.raises(ConfigError, match="not part of round v6.1"):
        build_config({"benchmark": "llama2-70b-99", "round": "v6.1"})
    assert build_config({"benchmark": "llama2-70b-99", "round": "v6.0"}).benchmark == "llama2-70b-99"


def test_scenario_rules_change_in_v5_1() -> None:
    old, new = benchmark_facts("llama2-70b-99.9", "v5.0"), benchmark_facts("llama2-70b-99.9", "v6.1")
    assert old.required_scenarios["datacenter"] == ("Offline", "Server") and not old.one_of_scenarios
    assert new.required_scenarios["datacenter"] == ("Offline",)
    assert new.one_of_scenarios["datacenter"] == ("Server", "Interactive")


def test_defaults_come_from_the_table() -> None:
    config = build_config({})
    assert (config.round, config.benchmark) == (DEFAULT_ROUND, DEFAULT_BENCHMARK)
    reference = benchmark_facts(DEFAULT_BENCHMARK).generation
    assert config.generation.max_new_tokens == reference.max_new_tokens
    assert config.generation.min_new_tokens == reference.min_new_tokens
    assert config.deviations() == []
    shorter = build_config({"generation": {"max_new_tokens": 64}})
    assert shorter.deviations() == [f"generation.max_new_tokens: {reference.max_new_tokens} -> 64"]
    assert build_config({"scenario": "Interactive"}).loadgen_model_name == "llama2-70b-interactive"


def test_unknown_benchmark_is_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        benchmark_facts("gptj-99")
    assert caught.value.message.startswith("benchmark is 'gptj-99'; expected one of llama2-70b-99")
