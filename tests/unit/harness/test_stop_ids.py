"""Ids besides EOS that end an answer (Llama 3.1's <|end_of_text|>, <|eom_id|>, <|eot_id|>): found, passed to every
engine, and trimmed at by the SUT exactly like EOS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.backends.base import response_lengths
from harness.backends.endpoint.protocol import completion_body
from harness.backends.sampling import hf_generate_kwargs, sampling_spec
from harness.backends.trtllm.support import final_tokens, sampling_kwargs
from harness.backends.vllm.support import sampling_kwargs as vllm_kwargs
from harness.errors import InputError
from harness.settings import GenerationConfig
from harness.sut.base import _needs_padding, build_response
from harness.tokenizer import extra_stop_ids

LLAMA31 = [128001, 128008, 128009]


def _checkpoint(tmp_path: Path, eos: object) -> str:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": eos}))
    return str(tmp_path)


def test_the_checkpoints_generation_config_names_the_other_eos_ids(tmp_path: Path) -> None:
    assert extra_stop_ids(_checkpoint(tmp_path, LLAMA31), 128009) == (128001, 128008)
    assert extra_stop_ids(str(tmp_path), 128009, [5, 128009, 5]) == (5,)  # the config's override wins
    assert extra_stop_ids(None, 2) == ()  # the embedded GGUF default: its EOS only


@pytest.mark.parametrize("eos", ["128009", [1, -2], [True]])
def test_a_bad_generation_config_is_one_line(tmp_path: Path, eos: object) -> None:
    with pytest.raises(InputError, match="generation_config.json: eos_token_id is"):
        extra_stop_ids(_checkpoint(tmp_path, eos), 128009)


def test_every_engine_is_told_every_stop_id() -> None:
    spec = sampling_spec(GenerationConfig(max_new_tokens=128, min_new_tokens=1), 128009,
                         stop_token_ids=(128001, 128008, 128009))
    assert spec.stop_token_ids == (128001, 128008) and spec.all_stop_ids == [128009, 128001, 128008]
    assert hf_generate_kwargs(spec)["eos_token_id"] == [128009, 128001, 128008]
    assert vllm_kwargs(spec)["stop_token_ids"] == [128009, 128001, 128008]
    assert completion_body("vllm", "m", [1, 2], spec, False)["stop_token_ids"] == [128009, 128001, 128008]
    assert sampling_kwargs(spec)["stop_token_ids"] == [128001, 128008] and sampling_kwargs(spec)["end_id"] == 128009
    plain = sampling_spec(GenerationConfig(max_new_tokens=8, min_new_tokens=1), 2)
    assert "stop_token_ids" not in sampling_kwargs(plain) and hf_generate_kwargs(plain)["eos_token_id"] == 2


def test_trtllm_keeps_the_stop_id_it_stopped_at() -> None:
    assert final_tokens([5, 6, 128008], "stop", 128009, (128001, 128008)) == [5, 6, 128008]
    assert final_tokens([5, 6], "stop", 128009, (128001, 128008)) == [5, 6, 128009]
    assert final_tokens([5, 6], "length", 128009, (128001, 128008)) == [5, 6]


def test_the_sut_trims_at_the_first_stop_id_as_at_eos() -> None:
    stops = frozenset({128001, 128008})
    assert list(build_response([5, 128008, 7, 128009], 128009, stops)) == [5, 128008]
    assert list(build_response([5, 128009, 128001], 128009, stops)) == [5, 128009]
    assert list(build_response([128001, 7], 128009, stops)) == [128001, 128009]  # padded to two tokens
    assert _needs_padding([128001, 7], 128009, stops) and not _needs_padding([7, 128001], 128009, stops)
    assert list(build_response([5, 128008, 7], 128009)) == [5, 128008, 7]  # without stop ids: EOS only
    rows = np.array([[5, 128008, 7, 1], [5, 6, 7, 8], [128009, 1, 2, 3]], dtype=np.int32)
    assert list(response_lengths(rows, 128009, (128001, 128008))) == [2, 4, 1]
    assert list(response_lengths(rows, 128009)) == [4, 4, 1]
