"""gpt-oss-120b's three sets of different sizes in LoadGen's user.conf: full runs are not labelled shortened, and a
set smaller than mlperf.conf's 6,396 performance samples is loaded as it is (LoadGen 6.0 crashes otherwise)."""

from __future__ import annotations

from harness.config import RunConfig
from harness.userconf import render_user_conf


def _conf(samples: int, **data: object) -> tuple[dict[str, float | int], list[str]]:
    found = render_user_conf(RunConfig.model_validate({"benchmark": "gpt-oss-120b", **data}), samples)
    return found.values, found.shortened


def test_full_runs_of_each_set_are_not_shortened() -> None:
    assert _conf(6396) == ({}, [])
    assert _conf(4395, mode="accuracy") == ({"performance_sample_count_override": 4395}, [])
    assert _conf(990, compliance_test="TEST07") == ({"performance_sample_count_override": 990}, [])
    assert _conf(6396, compliance_test="TEST09") == ({}, [])


def test_a_smaller_set_is_a_labelled_development_run() -> None:
    values, shortened = _conf(10, mode="accuracy")
    assert values["performance_sample_count_override"] == 10
    assert shortened[0] == "the QSL has 10 samples; a submission needs all 4395"
    values, shortened = _conf(4395)  # the accuracy set given to a performance run
    assert "the QSL has 4395 samples; a submission needs all 6396" in shortened


def test_a_lowered_override_on_the_full_set_is_named() -> None:
    _, shortened = _conf(6396, loadgen={"performance_sample_count_override": 100})
    assert shortened == ["performance_sample_count_override is 100"]
