"""RunConfig: reference defaults, clear errors with key paths and allowed values, frozen overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from harness.config import GenerationConfig, RunConfig, apply_overrides, build_config, load_config
from harness.errors import ConfigError, InputError
from harness.types import Scenario


def test_defaults_are_the_reference_generation_parameters() -> None:
    config = RunConfig()
    assert (config.round, config.benchmark, config.scenario) == ("v6.1", "llama2-70b-99.9", Scenario.OFFLINE)
    assert config.generation == GenerationConfig(max_new_tokens=1024, min_new_tokens=1, num_beams=1)
    assert GenerationConfig().max_new_tokens is None  # the benchmark's reference fills it (RunConfig)
    assert config.generation.greedy
    assert config.deviations() == []


def test_embedded_default_caps_max_new_tokens_and_records_it_as_a_deviation() -> None:
    config = load_config(None)
    assert config.model.is_embedded and config.dataset.path is None
    assert config.generation.max_new_tokens < 1024
    assert f"generation.max_new_tokens: 1024 -> {config.generation.max_new_tokens}" in config.deviations()


def test_unknown_key_names_the_path_and_the_allowed_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({}, ["generation.max_tokens=5"])
    message = str(caught.value)
    assert "unknown key 'generation.max_tokens'" in message
    assert "max_new_tokens" in message and "top_p" in message


def test_unknown_backend_key_lists_that_backends_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'backend.gpus'.*max_batch_size"):
        build_config({"backend": {"kind": "hf", "gpus": 2}})


def test_invalid_enum_value_lists_the_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"scenario: .*'Offline', 'Server', 'Interactive' or 'SingleStream' "
                                          r"\(got 'MultiStream'\)"):
        build_config({"scenario": "MultiStream"})


def test_single_stream_is_refused_for_a_benchmark_without_it() -> None:
    with pytest.raises(ConfigError, match="scenario SingleStream is not a scenario of llama2-70b-99.9 in round v6.1 "
                                          r"\(its scenarios: Offline, Server, Interactive\)"):
        build_config({"scenario": "SingleStream"})


def test_interactive_needs_round_v51_or_newer() -> None:
    with pytest.raises(ConfigError, match="Interactive needs round v5.1"):
        build_config({"scenario": "Interactive", "round": "v5.0"})
    config = build_config({"scenario": "Interactive", "round": "v5.1"})
    assert config.loadgen_model_name == "llama2-70b-interactive"


def test_min_new_tokens_above_max_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"min_new_tokens \(50\) exceeds max_new_tokens \(10\)"):
        build_config({"generation": {"min_new_tokens": 50, "max_new_tokens": 10}})


def test_overrides_make_a_new_object_and_parse_yaml_values() -> None:
    base = RunConfig()
    changed = apply_overrides(base, ["generation.temperature=0.7", "loadgen.target_qps=12.5", "scenario=Server"])
    assert base.generation.temperature == 0.0
    assert changed.generation.temperature == 0.7
    assert (changed.loadgen.target_qps, changed.scenario) == (12.5, Scenario.SERVER)
    with pytest.raises(ValidationError):
        changed.scenario = Scenario.OFFLINE  # type: ignore[misc]  # frozen


def test_switching_backend_kind_drops_the_other_kinds_options() -> None:
    config = load_config(None, ["backend.kind=fake", "backend.delay_ms=3"])
    assert config.backend.kind == "fake" and config.backend.delay_ms == 3  # type: ignore[union-attr]
    # the kind applies first wherever it stands: an earlier --set for the new kind is kept, not dropped
    config = load_config(None, ["backend.delay_ms=3", "backend.kind=fake"])
    assert config.backend.kind == "fake" and config.backend.delay_ms == 3  # type: ignore[union-attr]
    config = load_config(None, ["backend.client_workers=0", "backend.kind=endpoint", "backend.urls=http://h:1"])
    assert config.backend.client_workers == 0  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="unknown key 'backend.threads'"):  # another kind's keys: refused
        load_config(None, ["backend.threads=4", "backend.kind=fake"])


def test_malformed_set_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not key.path=value"):
        build_config({}, ["scenario"])


def test_config_file_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="expected a mapping"):
        load_config(bad)
