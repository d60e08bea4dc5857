"""The shape of one benchmark's facts: names, sample counts, accuracy targets, latency limits, scenarios, rules.

Each benchmark folder (`harness/benchmarks/<family>/facts.py`) fills these records from the official sources it
cites; `harness.benchmarks.registry` collects them by name. Nothing else in the project spells these numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["BenchmarkFacts", "Generation", "LatencyLimits", "Metric"]


@dataclass(frozen=True)
class Metric:
    """One accuracy metric as the checker reads it: `pattern` names it in accuracy.txt, `key` in accuracy.json.

    The checker's lower limit is ``reference * factor`` and its upper limit ``reference * upper_factor``; values
    are compared after ``float()`` of the printed text, ``value >= lower`` and ``not value > upper``. A metric with
    only an upper limit (factor None: gpt-oss-120b's TOKENS_PER_SAMPLE) fails only when printed above it.
    """

    pattern: str  # the checker's name: ROUGE1, TOKENS_PER_SAMPLE, GEN_LEN, exact_match ...
    key: str  # our accuracy.json / summary key: rouge1, tokens_per_sample, gen_len ...
    reference: float
    factor: float | None
    upper_factor: float | None = None

    @property
    def lower(self) -> float | None:
        """The target, computed as the checker computes it, or None (an upper limit only)."""
        return None if self.factor is None else self.reference * self.factor

    @property
    def upper(self) -> float | None:
        """The upper limit, or None."""
        return None if self.upper_factor is None else self.reference * self.upper_factor


@dataclass(frozen=True)
class LatencyLimits:
    """p99 TTFT and TPOT limits (ms) of a latency-bound scenario; LoadGen's early stopping enforces them."""

    ttft_ms: float
    tpot_ms: float

    @property
    def ns(self) -> tuple[int, int]:
        """(TTFT, TPOT) in nanoseconds, as the detail log reports percentiles."""
        return int(self.ttft_ms * 1_000_000), int(self.tpot_ms * 1_000_000)


@dataclass(frozen=True)
class Generation:
    """The generation settings the closed division fixes (the reference implementation's)."""

    max_new_tokens: int  # the output cap of accuracy runs (and of every run unless performance_max_new_tokens)
    min_new_tokens: int = 1
    greedy: bool = True
    temperature: float = 0.0  # sampled benchmarks (gpt-oss-120b: 1.0); 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off (the reference's -1)
    performance_max_new_tokens: int | None = None  # a different cap for performance runs (gpt-oss-120b: 10,240)
    stop_token_ids: tuple[int, ...] = ()  # ids that end an answer besides the tokenizer's EOS (harmony's)

    def cap(self, accuracy: bool) -> int:
        """The output cap of an accuracy run (True) or a performance run (False)."""
        if accuracy or self.performance_max_new_tokens is None:
            return self.max_new_tokens
        return self.performance_max_new_tokens


@dataclass(frozen=True)
class BenchmarkFacts:
    """Everything a run, a scorer, the compliance tests and the packager need to know about one benchmark."""

    name: str  # the checker's model name and the tree's benchmark folder: llama2-70b-99.9
    family: str  # the folder under harness/benchmarks holding its loader and scorer: llama2_70b
    title: str  # for people: "Llama 2 70B (99.9 % of FP32 accuracy)"
    reference_model: str  # the checkpoint the closed division requires
    loadgen_model: str  # the model name LoadGen reads its mlperf.conf keys with
    loadgen_model_interactive: str | None  # the same for Interactive (a Server run under another name)
    dataset: str  # what the full dataset file is
    dataset_samples: int
    performance_samples: int
    accuracy_samples: int
    metrics: tuple[Metric, ...]
    latency: Mapping[str, LatencyLimits]  # scenario -> p99 limits (Server, Interactive)
    system_types: tuple[str, ...]
    required_scenarios: Mapping[str, tuple[str, ...]]  # system type -> scenarios every closed result needs
    one_of_scenarios: Mapping[str, tuple[str, ...]]  # system type -> at least one of these (closed)
    compliance_tests: tuple[str, ...]
    generation: Generation
    rounds: tuple[str, ...]  # the rounds whose checker knows this benchmark
    min_queries: Mapping[str, int] = field(default_factory=dict)  # scenario -> the checker's min query count
    # the MLCommons calibration file (post-training quantization) and the directory name `harness dataset
    # calibration` writes from it by default under the TensorRT-LLM work directory (the quantize stage's input)
    calibration_file: str = ""
    calibration_dir: str = ""
    # audit test -> the size of its own dataset, where the test runs on a set of its own (gpt-oss-120b's TEST07: 990)
    compliance_samples: Mapping[str, int] = field(default_factory=dict)
    # round -> fields that differ in that round (applied by `in_round`)
    round_overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def in_round(self, round_name: str) -> BenchmarkFacts:
        """These facts as the given round states them."""
        changes = self.round_overrides.get(round_name)
        return replace(self, round_overrides={}, **changes) if changes else self

    def run_samples(self, accuracy: bool, compliance_test: str | None = None) -> int:
        """The QSL size of a full run: the accuracy set, a compliance test's own set, or the performance set."""
        if compliance_test in self.compliance_samples:
            return self.compliance_samples[str(compliance_test)]
        return self.accuracy_samples if accuracy else self.dataset_samples

    def loadgen_name(self, scenario: str) -> str:
        """The LoadGen model name of a scenario (Interactive runs under its own name)."""
        if scenario == "Interactive" and self.loadgen_model_interactive:
            return self.loadgen_model_interactive
        return self.loadgen_model

    def scenarios(self, system_type: str = "datacenter") -> tuple[str, ...]:
        """Every scenario a result of this system type may have."""
        return (*self.required_scenarios.get(system_type, ()), *self.one_of_scenarios.get(system_type, ()))

    def metric(self, key: str) -> Metric | None:
        """The metric with this accuracy.json key, or None."""
        return next((m for m in self.metrics if m.key == key), None)
