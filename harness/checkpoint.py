"""One-time conversion of a GGUF model into a Hugging Face safetensors checkpoint directory, kept in the cache."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from harness.errors import EnvironmentProblem, InputError
from harness.model_files import ModelFiles, force_offline, resolve_model
from harness.tokenizer import cache_root, load_tokenizer

__all__ = ["checkpoint_dir", "converted_checkpoint"]

_DONE = "model.safetensors"  # written last into the temp dir; the rename makes the whole directory appear at once


def checkpoint_dir(files: ModelFiles) -> Path:
    """Where the converted checkpoint of this GGUF file lives: keyed by its path, size and mtime."""
    if files.gguf_file is None:
        raise InputError(f"{files.display} is not a GGUF file", hint="only GGUF models need converting")
    source = files.directory / files.gguf_file
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "checkpoints" / f"{Path(files.gguf_file).stem}-{key}"


def converted_checkpoint(path: str | None = None) -> Path:
    """An HF safetensors directory for a model path (None = embedded SmolLM2); converts a GGUF file once.

    A directory is returned as it is. A GGUF file is dequantized by transformers into a float32 model,
    whose weights are copied into a plain model built from its config (a GGUF-loaded model cannot be
    saved as it is), then saved with its config, generation config and tokenizer to a temporary folder
    that is renamed into place: a reader sees a complete checkpoint or none.
    """
    files = resolve_model(path)
    if files.gguf_file is None:
        return files.directory
    target = checkpoint_dir(files)
    if (target / _DONE).is_file() and (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _convert(files, partial)
        try:
            partial.rename(target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / _DONE).is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _convert(files: ModelFiles, out: Path) -> None:
    force_offline()
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError as err:
        raise EnvironmentProblem(f"converting a GGUF model needs {err.name}",
                                 hint="run ./scripts/install.sh") from err
    loaded = AutoModelForCausalLM.from_pretrained(str(files.directory), gguf_file=files.gguf_file,
                                                  dtype=torch.float32)
    config = loaded.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attribute):
            delattr(config, attribute)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise InputError(f"{files.display}: weights do not match the model built from its config "
                         f"(missing {sorted(set(missing) - tied)[:3]}, unexpected {sorted(unexpected)[:3]})")
    plain.generation_config = loaded.generation_config
    load_tokenizer(str(files.directory / files.gguf_file)).save_pretrained(str(out))
    plain.save_pretrained(str(out), safe_serialization=True)
