"""Shared test scaffolding for the TensorRT-LLM fake (tests/fakes/tensorrt_llm): putting it on sys.path with fresh
knobs, and a small real Hugging Face tokenizer for runs that go through it."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

FAKES = str(Path(__file__).resolve().parent / "fakes")


def drop_fake_modules() -> None:
    """Forget every imported tensorrt_llm module (the next import loads the fake afresh)."""
    for name in [n for n in sys.modules if n == "tensorrt_llm" or n.startswith("tensorrt_llm.")]:
        del sys.modules[name]


def fake_trtllm_module(monkeypatch: pytest.MonkeyPatch, clean_env: Iterable[str]) -> Iterator[ModuleType]:
    """The fake's implementation module on sys.path, with a clean access log, default knobs and none of
    `clean_env` set (for a fixture to yield from)."""
    for name in clean_env:
        monkeypatch.delenv(name, raising=False)
    drop_fake_modules()
    monkeypatch.syspath_prepend(FAKES)
    from tensorrt_llm import _fake

    _fake.reset()
    yield _fake
    drop_fake_modules()


def word_level_tokenizer(directory: Path, words: int = 8000) -> str:
    """Save a small real HF tokenizer (<unk> 0, <s> 1, </s> 2 = EOS, then w0, w1, ...) in directory; its path."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(directory)
    return str(directory)


def chunk_tokenizer(directory: Path, chunks: list[str]) -> Any:
    """A real HF tokenizer whose tokens are the given text chunks (decoding joins them with spaces)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(chunks)}}
    model = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=model, unk_token="<unk>").save_pretrained(directory)
    return AutoTokenizer.from_pretrained(str(directory))
