"""The run's shared config sections (model, dataset, generation, LoadGen, distribution): pure pydantic, no I/O.

They sit below the backends so that an engine's options and factory can use them without the whole
RunConfig (harness.config composes them, with each engine's own options, into one RunConfig).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from harness.benchmarks.facts import Generation

__all__ = ["DatasetConfig", "DistributedConfig", "GenerationConfig", "LoadGenConfig", "ModelConfig", "Section"]


class Section(BaseModel):
    """Base of every config section: frozen, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # .inf / .nan are never a rate


class ModelConfig(Section):
    """Which model the backend serves and which tokenizer decodes its output."""

    path: str | None = Field(None, description="HF checkpoint dir or .gguf file; null = embedded SmolLM2-135M")
    tokenizer: str | None = Field(None, description="tokenizer dir or .gguf; default: path")
    name: str | None = Field(None, description="display name for reports; default: derived from path")
    eos_token_id: int | None = Field(None, description="override the tokenizer's EOS id")
    stop_token_ids: list[int] | None = Field(None, description="ids besides EOS that end an answer (kept, as EOS "
                                             "is); null = the checkpoint's generation_config.json eos_token_id list")

    @property
    def is_embedded(self) -> bool:
        """True when the embedded SmolLM2 default is used."""
        return self.path is None


class DatasetConfig(Section):
    """The QSL: the benchmark's MLCommons dataset file, or the benchmark's embedded smoke set."""

    path: str | None = Field(None, description="the benchmark's dataset file (MLCommons); null = smoke set")
    max_samples: int | None = Field(None, ge=1, description="use only the first N samples (not submittable)")
    chat_template: bool = Field(True, description="smoke set: wrap prompts in the tokenizer's chat template "
                                "(where the benchmark's reference prompts are chat-formatted)")
    livecodebench: str | None = Field(None, description="gpt-oss-120b: the local LiveCodeBench copy (folder of "
                                      "code_generation_lite test*.jsonl) its scorer runs the generated programs "
                                      "against; null = the smoke set's own problems")


class GenerationConfig(Section):
    """Decoding parameters; the defaults are greedy, the lengths the benchmark's reference (RunConfig fills them)."""

    max_new_tokens: int | None = Field(None, ge=2, description="null = the benchmark's reference length")
    min_new_tokens: int | None = Field(None, ge=0, description="null = the benchmark's reference minimum")
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy (reference)")
    top_k: int = Field(0, ge=0, description="0 = off")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    num_beams: int = Field(1, ge=1)
    repetition_penalty: float = Field(1.0, gt=0.0)
    presence_penalty: float = 0.0
    length_penalty: float = 1.0
    early_stopping: bool = True

    @model_validator(mode="after")
    def _min_not_above_max(self) -> GenerationConfig:
        if self.min_new_tokens is not None and self.max_new_tokens is not None and \
                self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) exceeds max_new_tokens ({self.max_new_tokens})"
            )
        return self

    @property
    def greedy(self) -> bool:
        """True when decoding is deterministic argmax (with one beam)."""
        return self.temperature == 0.0

    def deviations(self, reference: Generation, *, accuracy: bool) -> list[str]:
        """Every field that differs from the benchmark's reference generation (the output cap of the run's mode,
        greedy decoding or the reference's sampling), as 'name: reference -> value'."""
        expected = GenerationConfig(max_new_tokens=reference.cap(accuracy), min_new_tokens=reference.min_new_tokens,
                                    temperature=reference.temperature, top_p=reference.top_p, top_k=reference.top_k)
        return [
            f"generation.{name}: {getattr(expected, name)!r} -> {getattr(self, name)!r}"
            for name in type(self).model_fields
            if getattr(self, name) != getattr(expected, name)
        ]


class LoadGenConfig(Section):
    """LoadGen overrides, under LoadGen's own user.conf names, written into the run's user.conf."""

    target_qps: float | None = Field(None, gt=0, allow_inf_nan=False)
    target_latency: float | None = Field(None, gt=0, allow_inf_nan=False,
                                         description="ms; SingleStream: the expected query latency LoadGen sizes the "
                                                     "run with (its default, 10 ms, asks for 66,000+ queries)")
    min_duration: int | None = Field(None, ge=0, description="ms")
    max_duration: int | None = Field(None, ge=0, description="ms")
    min_query_count: int | None = Field(None, ge=1)
    max_query_count: int | None = Field(None, ge=0)
    performance_sample_count_override: int | None = Field(None, ge=1)
    server_coalesce_queries: bool | None = None


class DistributedConfig(Section):
    """Data-parallel replicas over MPI (rank 0 runs LoadGen)."""

    replicas: int = Field(1, ge=1)
    loadgen_rank_hosts_replica: bool = True
    worker_timeout_s: float = Field(20.0, gt=0, description="a silent worker fails the run after this")
