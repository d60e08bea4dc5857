"""user.conf rendering: LoadGen's key names under the llama2-70b model name; short runs are labelled."""

from __future__ import annotations

from harness.config import build_config
from harness.userconf import render_user_conf


def test_full_dataset_run_writes_only_the_users_keys_and_is_not_shortened() -> None:
    config = build_config({"scenario": "Server", "loadgen": {"target_qps": 71.2}})
    conf = render_user_conf(config, 24576)
    assert conf.shortened == []
    assert "llama2-70b.Server.target_qps = 71.2" in conf.text
    assert "min_duration" not in conf.text


def test_small_dataset_gets_a_short_run_and_every_reason_is_recorded() -> None:
    conf = render_user_conf(build_config({}), 48)
    assert conf.values == {"performance_sample_count_override": 48, "min_query_count": 48, "min_duration": 0}
    assert any("48 samples" in reason for reason in conf.shortened)
    assert any("min_duration is 0 ms" in reason for reason in conf.shortened)


def test_interactive_uses_the_interactive_model_and_the_server_scenario() -> None:
    config = build_config({"round": "v5.1", "scenario": "Interactive", "loadgen": {"target_qps": 3}})
    assert "llama2-70b-interactive.Server.target_qps = 3" in render_user_conf(config, 24576).text
