"""The harmony format's stop tokens as openai-harmony states them (the facts' STOP_TOKEN_IDS are checked against it).

gpt-oss answers in OpenAI's harmony format; an answer ends at ``<|return|>`` (final message) or ``<|call|>`` (tool
call), which openai-harmony's ``stop_tokens_for_assistant_actions()`` names, and the checkpoint's
generation_config.json also lists ``<|endoftext|>`` (facts.STOP_TOKEN_IDS). openai-harmony needs the o200k vocabulary
file (``o200k_base.tiktoken``): it downloads it once, or reads it from the folder ``TIKTOKEN_ENCODINGS_BASE`` names
(for a machine without network, copy the file there). The prompts themselves are MLCommons' harmony-rendered ids,
used as they are.
"""

from __future__ import annotations

from harness.benchmarks.gpt_oss_120b.facts import STOP_TOKEN_IDS
from harness.errors import EnvironmentProblem

__all__ = ["STOP_TOKEN_IDS", "harmony_stop_token_ids"]


def harmony_stop_token_ids() -> tuple[int, ...]:
    """openai-harmony's stop tokens for assistant actions (``<|return|>``, ``<|call|>``) of the gpt-oss encoding."""
    try:
        import openai_harmony
    except ImportError:
        raise EnvironmentProblem("openai-harmony is not installed; the harmony stop tokens come from it",
                                 hint="pip install openai-harmony (./scripts/install.sh does)") from None
    try:
        encoding = openai_harmony.load_harmony_encoding(openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS)
    except Exception as err:  # HarmonyError: the vocabulary file could not be downloaded or read
        raise EnvironmentProblem(
            f"openai-harmony cannot load the gpt-oss encoding ({str(err).splitlines()[0]})",
            hint="put o200k_base.tiktoken (https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken) "
                 "in a folder and set TIKTOKEN_ENCODINGS_BASE to it") from None
    return tuple(int(i) for i in encoding.stop_tokens_for_assistant_actions())

