"""The embedded GGUF tokenizer is extracted once, kept on disk, and behaves exactly as the GGUF one."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from harness.dataset import _chat_prompt_ids, smoke_entries
from harness.model_files import embedded_model
from harness.tokenizer import _load, load_tokenizer


def test_cached_tokenizer_equals_the_gguf_tokenizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    _load.cache_clear()
    load_tokenizer(None)  # first load extracts and saves
    saved = list((tmp_path / "tokenizers").iterdir())
    assert len(saved) == 1 and (saved[0] / "tokenizer_config.json").is_file()
    _load.cache_clear()
    cached = load_tokenizer(None)
    files = embedded_model()
    reference = AutoTokenizer.from_pretrained(str(files.directory), gguf_file=files.gguf_file)
    for entry in smoke_entries()[:16]:
        assert _chat_prompt_ids(cached, entry, True) == _chat_prompt_ids(reference, entry, True)
        ids = reference(entry.output)["input_ids"]
        assert cached(entry.output)["input_ids"] == ids
        assert cached.decode(ids, skip_special_tokens=True) == reference.decode(ids, skip_special_tokens=True)
    assert cached.eos_token_id == reference.eos_token_id
    _load.cache_clear()
