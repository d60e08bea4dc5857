"""gpt-oss-120b's fixed generation: sampling at temperature 1.0, the output cap per mode, harmony's stop ids."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.backends.sampling import sampling_spec
from harness.benchmarks.gpt_oss_120b.facts import STOP_TOKEN_IDS
from harness.benchmarks.gpt_oss_120b.harmony import harmony_stop_token_ids
from harness.config import RunConfig, apply_overrides, build_config, load_config, with_updates
from harness.distributed.replicas import stop_ids
from harness.errors import EnvironmentProblem
from harness.types import TestMode


def _config(**data: object) -> RunConfig:
    return RunConfig.model_validate({"benchmark": "gpt-oss-120b", **data})


def test_the_reference_sampling_and_the_cap_of_each_mode_fill_what_the_config_leaves_out() -> None:
    performance, accuracy = _config(), _config(mode="accuracy")
    assert (performance.generation.temperature, performance.generation.top_p, performance.generation.top_k) == \
        (1.0, 1.0, 0)
    assert performance.generation.max_new_tokens == 10240 and accuracy.generation.max_new_tokens == 32768
    assert performance.deviations() == [] and accuracy.deviations() == []
    spec = sampling_spec(accuracy.generation, 200002)
    assert not spec.greedy and spec.temperature == 1.0


def test_switching_the_mode_later_takes_that_modes_cap_and_llama_stays_greedy() -> None:
    performance = build_config({"benchmark": "gpt-oss-120b"}, [])
    assert performance.generation.max_new_tokens == 10240
    config = with_updates(apply_overrides(performance, ["scenario=Server"]), {"mode": TestMode.ACCURACY})
    assert config.generation.max_new_tokens == 32768
    llama = load_config(None)
    assert llama.generation.temperature == 0.0 and llama.generation.greedy


def test_a_changed_sampling_setting_is_a_deviation() -> None:
    config = _config(generation={"temperature": 0.0, "max_new_tokens": 2048})
    assert config.deviations() == ["generation.max_new_tokens: 10240 -> 2048", "generation.temperature: 1.0 -> 0.0"]


class _Tokenizer(SimpleNamespace):
    def __len__(self) -> int:
        return int(self.size)


def test_harmonys_stop_ids_join_the_run_only_when_the_vocabulary_holds_them() -> None:
    config = _config()
    assert stop_ids(config, _Tokenizer(size=201088), 200002) == (199999, 200012)
    assert stop_ids(config, _Tokenizer(size=49152), 2) == ()  # the embedded SmolLM2 on the smoke set
    explicit = _config(model={"stop_token_ids": [7]})
    assert stop_ids(explicit, _Tokenizer(size=201088), 200002) == (7,)


def test_the_facts_stop_ids_hold_openai_harmonys_stop_tokens() -> None:
    try:
        harmony = harmony_stop_token_ids()
    except EnvironmentProblem as problem:  # openai-harmony needs o200k_base.tiktoken (download or local folder)
        pytest.skip(f"openai-harmony cannot load its vocabulary here: {problem.message}")
    assert set(harmony) <= set(STOP_TOKEN_IDS)


def test_every_engine_is_told_the_references_sampling_cap_and_harmony_stop_ids() -> None:
    from harness.backends.endpoint.protocol import completion_body
    from harness.backends.sampling import hf_generate_kwargs
    from harness.backends.trtllm.support import sampling_kwargs as trtllm_kwargs
    from harness.backends.vllm.support import sampling_kwargs as vllm_kwargs

    config = _config(mode="accuracy")
    spec = sampling_spec(config.generation, 200002, None, stop_ids(config, _Tokenizer(size=201088), 200002))
    assert spec.all_stop_ids == [200002, 199999, 200012]
    vllm = vllm_kwargs(spec)
    assert (vllm["temperature"], vllm["top_p"], vllm["max_tokens"], vllm["stop_token_ids"]) == \
        (1.0, 1.0, 32768, [200002, 199999, 200012])
    trtllm = trtllm_kwargs(spec)
    assert (trtllm["temperature"], trtllm["top_p"], trtllm["top_k"], trtllm["max_tokens"], trtllm["end_id"],
            trtllm["stop_token_ids"]) == (1.0, 1.0, None, 32768, 200002, [199999, 200012])
    hf = hf_generate_kwargs(spec)
    assert hf["do_sample"] and hf["temperature"] == 1.0 and hf["eos_token_id"] == [200002, 199999, 200012]
    for flavour in ("vllm", "sglang", "trtllm-serve"):
        body = completion_body(flavour, "gpt-oss-120b", [1, 2], spec, True)
        assert (body["temperature"], body["top_p"], body["max_tokens"], body["stop_token_ids"]) == \
            (1.0, 1.0, 32768, [200002, 199999, 200012]), flavour
        assert "top_k" not in body  # 0 = off: the servers' own default (all tokens)
