"""The composition point's model rule: an engine that loads only checkpoint directories gets a converted one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config import load_config
from harness.distributed import replicas
from harness.model_files import EMBEDDED_NAME


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str | None]:
    """Replaces harness.checkpoint's conversion (24 s of real work, covered by test_checkpoint_smollm2)."""
    calls: list[str | None] = []

    def convert(path: str | None = None) -> Path:
        calls.append(path)
        return tmp_path / "converted"

    monkeypatch.setattr(replicas, "converted_checkpoint", convert)
    return calls


def test_the_embedded_gguf_becomes_a_checkpoint_for_vllm(conversions: list[str | None], tmp_path: Path) -> None:
    model = replicas.engine_model(load_config(None, ["backend.kind=vllm"]))
    assert conversions == [None]
    assert model.path == str(tmp_path / "converted") and model.name == EMBEDDED_NAME


def test_a_gguf_path_is_converted_and_keeps_its_name(conversions: list[str | None], tmp_path: Path) -> None:
    gguf = tmp_path / "m.Q8.gguf"
    gguf.write_bytes(b"GGUF")
    model = replicas.engine_model(load_config(None, ["backend.kind=vllm", f"model.path={gguf}"]))
    assert conversions == [str(gguf)] and model.name == "m.Q8.gguf"


def test_a_checkpoint_directory_and_other_engines_are_left_alone(conversions: list[str | None],
                                                                 tmp_path: Path) -> None:
    config = load_config(None, ["backend.kind=vllm", f"model.path={tmp_path}"])
    assert replicas.engine_model(config) == config.model
    hf = load_config(None, ["backend.kind=hf"])
    assert replicas.engine_model(hf) is hf.model
    assert conversions == []
