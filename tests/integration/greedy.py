"""Reference greedy decoding for the endpoint tests: smoke-set prompts and transformers float32 token ids."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.dataset import _chat_prompt_ids, smoke_entries
from harness.model_files import ModelFiles
from harness.tokenizer import load_tokenizer

__all__ = ["hf_greedy", "load_float32", "smoke_prompts"]


def smoke_prompts(count: int) -> list[list[int]]:
    """The first `count` smoke-set prompts as the harness tokenizes them (chat template)."""
    tokenizer = load_tokenizer(None)
    return [_chat_prompt_ids(tokenizer, entry, True) for entry in smoke_entries()[:count]]


def load_float32(files: ModelFiles | Path) -> Any:
    """A float32 transformers model from a checkpoint directory or a GGUF file."""
    import torch
    from transformers import AutoModelForCausalLM

    if isinstance(files, Path):
        return AutoModelForCausalLM.from_pretrained(str(files), dtype=torch.float32).eval()
    return AutoModelForCausalLM.from_pretrained(str(files.directory), gguf_file=files.gguf_file,
                                                dtype=torch.float32).eval()


def hf_greedy(model: Any, prompts: list[list[int]], max_new: int, min_new: int = 0,
              eos_token_id: int = 2) -> list[list[int]]:
    """Greedy ids per prompt, one prompt at a time (no padding), EOS included when generated."""
    import torch

    outputs = []
    for ids in prompts:
        with torch.no_grad():
            out = model.generate(torch.tensor([ids]), max_new_tokens=max_new, min_new_tokens=min_new,
                                 do_sample=False, eos_token_id=eos_token_id, pad_token_id=eos_token_id)
        outputs.append(out[0, len(ids):].tolist())
    return outputs
