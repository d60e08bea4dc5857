"""Backend-neutral sampling parameters derived from GenerationConfig, and their transformers mapping.

Every backend (hf, trtllm) starts from the same SamplingSpec so that a config means the same decoding
everywhere; each adapter only renames fields for its engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.settings import GenerationConfig

__all__ = ["SamplingSpec", "check_streaming_support", "hf_generate_kwargs", "sampling_spec"]


@dataclass(frozen=True)
class SamplingSpec:
    """Normalised decoding parameters (greedy when temperature == 0 and num_beams == 1)."""

    max_new_tokens: int
    min_new_tokens: int
    greedy: bool
    temperature: float
    top_k: int
    top_p: float
    num_beams: int
    repetition_penalty: float
    presence_penalty: float
    length_penalty: float
    early_stopping: bool
    eos_token_id: int
    pad_token_id: int
    stop_token_ids: tuple[int, ...] = ()  # ids besides EOS that end an answer (the checkpoint's other EOS ids)

    @property
    def all_stop_ids(self) -> list[int]:
        """EOS first, then the other stop ids: what an engine is told to stop at."""
        return [self.eos_token_id, *self.stop_token_ids]


def sampling_spec(generation: GenerationConfig, eos_token_id: int, pad_token_id: int | None = None,
                  stop_token_ids: tuple[int, ...] = ()) -> SamplingSpec:
    """Build the spec; pad defaults to EOS, as in the reference (pad_token = eos_token)."""
    return SamplingSpec(
        max_new_tokens=generation.max_new_tokens,
        min_new_tokens=generation.min_new_tokens,
        greedy=generation.greedy,
        temperature=generation.temperature,
        top_k=generation.top_k,
        top_p=generation.top_p,
        num_beams=generation.num_beams,
        repetition_penalty=generation.repetition_penalty,
        presence_penalty=generation.presence_penalty,
        length_penalty=generation.length_penalty,
        early_stopping=generation.early_stopping,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id if pad_token_id is None else pad_token_id,
        stop_token_ids=tuple(i for i in stop_token_ids if i != eos_token_id),
    )


def hf_generate_kwargs(spec: SamplingSpec) -> dict[str, Any]:
    """Keyword arguments for transformers' generate() (presence_penalty is applied separately)."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": spec.max_new_tokens,
        "min_new_tokens": spec.min_new_tokens,
        "num_beams": spec.num_beams,
        "eos_token_id": spec.all_stop_ids if spec.stop_token_ids else spec.eos_token_id,
        "pad_token_id": spec.pad_token_id,
        "do_sample": not spec.greedy,
    }
    if spec.num_beams > 1:
        kwargs["early_stopping"] = spec.early_stopping
        kwargs["length_penalty"] = spec.length_penalty
    if spec.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = spec.repetition_penalty
    if not spec.greedy:
        kwargs["temperature"] = spec.temperature
        kwargs["top_k"] = spec.top_k
        kwargs["top_p"] = spec.top_p
    return kwargs


def check_streaming_support(spec: SamplingSpec, streams_first_token: bool, backend: str) -> None:
    """Beam search cannot report a first token early; refuse it for Server/Interactive."""
    if streams_first_token and spec.num_beams > 1:
        raise ConfigError(
            f"generation.num_beams is {spec.num_beams}, but backend {backend} cannot stream a first token "
            "with beam search (Server/Interactive need one)",
            hint="use num_beams: 1 for Server/Interactive, or run Offline",
        )
