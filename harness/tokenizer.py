"""Loading the tokenizer that matches the model: slow SentencePiece when tokenizer.model exists."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.model_files import ModelFiles, force_offline, resolve_model

__all__ = ["cache_root", "eos_token_id", "load_tokenizer"]


def cache_root() -> Path:
    """Where converted tokenizers are kept: $HARNESS_CACHE_DIR, else ~/.cache/mlperf-llm-harness."""
    return Path(os.environ.get("HARNESS_CACHE_DIR", Path.home() / ".cache" / "mlperf-llm-harness"))


def _gguf_cache_dir(directory: str, gguf_file: str) -> Path:
    source = Path(directory) / gguf_file
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "tokenizers" / f"{Path(gguf_file).stem}-{key}"


def _from_gguf(directory: str, gguf_file: str, kwargs: dict[str, Any]) -> Any:
    """A GGUF tokenizer takes seconds to extract from the model file: extract once, keep it on disk."""
    from transformers import AutoTokenizer

    cached = _gguf_cache_dir(directory, gguf_file)
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(cached), **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file, **kwargs)
    with contextlib.suppress(OSError):  # a read-only home only costs the next load its speed
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{cached.name}.", dir=cached.parent))
        tokenizer.save_pretrained(str(partial))
        try:
            partial.rename(cached)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(partial, ignore_errors=True)
    return tokenizer


@lru_cache(maxsize=8)
def _load(directory: str, gguf_file: str | None, prefer_slow: bool) -> Any:
    force_offline()
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"model_max_length": 2048, "padding_side": "left"}
    try:
        if gguf_file:
            return _from_gguf(directory, gguf_file, kwargs)
        return AutoTokenizer.from_pretrained(directory, use_fast=not prefer_slow, **kwargs)
    except (OSError, ValueError) as err:
        raise InputError(
            f"cannot load a tokenizer from {directory}{'/' + gguf_file if gguf_file else ''}: "
            f"{str(err).splitlines()[0]}",
            hint="point model.tokenizer (or --tokenizer) at a checkpoint directory with tokenizer files",
        ) from None


def load_tokenizer(path: str | None) -> Any:
    """Tokenizer for a model path (None = embedded SmolLM2); slow when tokenizer.model is present.

    The MLCommons reference decodes with ``use_fast=False``, i.e. the SentencePiece tokenizer, whenever
    the checkpoint ships ``tokenizer.model`` (Llama 2 does); otherwise the fast tokenizer is used.
    """
    files: ModelFiles = resolve_model(path)
    prefer_slow = files.gguf_file is None and (files.directory / "tokenizer.model").is_file()
    tokenizer = _load(str(files.directory), files.gguf_file, prefer_slow)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def eos_token_id(tokenizer: Any, override: int | None = None) -> int:
    """The EOS id to trim at: the override, else the tokenizer's."""
    if override is not None:
        return override
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer defines no EOS token", hint="set model.eos_token_id")
    return int(eos)
