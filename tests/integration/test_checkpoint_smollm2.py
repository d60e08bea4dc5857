"""harness.checkpoint on the embedded SmolLM2 GGUF: one conversion, reused, and the same greedy ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkpoint import checkpoint_dir, converted_checkpoint
from harness.errors import InputError
from harness.model_files import embedded_model
from tests.integration.greedy import hf_greedy, load_float32, smoke_prompts

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return converted_checkpoint()


def test_the_checkpoint_is_a_complete_safetensors_directory_in_the_cache(checkpoint: Path) -> None:
    assert checkpoint == checkpoint_dir(embedded_model())
    names = {p.name for p in checkpoint.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert "quantization_config" not in (checkpoint / "config.json").read_text()
    assert not [p for p in checkpoint.parent.iterdir() if p.name.startswith(f".{checkpoint.name}.")]


def test_a_second_call_reuses_the_checkpoint_without_rewriting_it(checkpoint: Path) -> None:
    before = (checkpoint / "model.safetensors").stat().st_mtime_ns
    assert converted_checkpoint() == checkpoint
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == before


def test_a_directory_is_returned_as_it_is_and_only_gguf_files_have_a_checkpoint_dir(checkpoint: Path) -> None:
    assert converted_checkpoint(str(checkpoint)) == checkpoint
    with pytest.raises(InputError, match="not a GGUF file"):
        checkpoint_dir(type(embedded_model())(checkpoint))


def test_greedy_ids_of_the_converted_checkpoint_equal_the_gguf_models(checkpoint: Path) -> None:
    prompts = smoke_prompts(3)
    converted = hf_greedy(load_float32(checkpoint), prompts, max_new=16, min_new=16)
    original = hf_greedy(load_float32(embedded_model()), prompts, max_new=16, min_new=16)
    assert all(len(ids) == 16 for ids in converted)
    assert converted == original
