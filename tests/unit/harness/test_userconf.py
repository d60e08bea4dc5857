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


def test_v4_1_full_size_offline_is_refused_naming_the_loadgen_equal_issue_bug() -> None:
    """issue 17: LoadGen 4.1's Offline equal-issue padding builds 24,576 queries of 24,576 samples."""
    from harness.userconf import offline_query_blowup

    config = build_config({"round": "v4.1", "scenario": "Offline"})
    problem = offline_query_blowup(config, render_user_conf(config, 24576).values)
    assert problem is not None
    assert "24576 queries of 24576 samples" in problem and "#2031" in problem and "target_qps above 37.24" in problem


def test_v4_1_offline_is_fine_when_the_one_query_gets_padded_and_other_rounds_never_refuse() -> None:
    from harness.userconf import offline_query_blowup

    fast = build_config({"round": "v4.1", "scenario": "Offline", "loadgen": {"target_qps": 50}})
    # One query of 33,000 samples (measured with LoadGen 4.1, tests/integration/test_submission_full_size.py).
    assert offline_query_blowup(fast, render_user_conf(fast, 24576).values) is None
    server = build_config({"round": "v4.1", "scenario": "Server"})
    assert offline_query_blowup(server, render_user_conf(server, 24576).values) is None
    accuracy = build_config({"round": "v4.1", "scenario": "Offline", "mode": "accuracy"})
    assert offline_query_blowup(accuracy, render_user_conf(accuracy, 24576).values) is None
    v40 = build_config({"round": "v4.0", "scenario": "Offline"})
    assert offline_query_blowup(v40, render_user_conf(v40, 24576).values) is None


def test_single_stream_expected_latency_is_loadgens_target_latency_in_ms() -> None:
    config = build_config({"benchmark": "llama3.1-8b-edge", "scenario": "SingleStream",
                           "loadgen": {"target_latency": 50}})
    assert "llama3_1-8b-edge.SingleStream.target_latency = 50" in render_user_conf(config, 5000).text
