"""Llama 2 70B (OpenOrca, ROUGE): llama2-70b-99 and llama2-70b-99.9, as the official checker states them.

Sources: mlcommons/inference tools/submission/submission_checker/constants.py (MODEL_CONFIG of v5.0-v6.1,
LLM_LATENCY_LIMITS), the v4.x tag scripts' MODEL_CONFIG, loadgen/mlperf.conf (model names, 24,576 samples) and
language/llama2-70b/SUT.py (max_new_tokens 1024, min_new_tokens 1, greedy). llama2-70b-99 was removed from
v6.1 (mlcommons/inference #2651, inference_policies #338).
"""

from __future__ import annotations

from harness.benchmarks.facts import BenchmarkFacts, Generation, LatencyLimits, Metric

__all__ = ["BENCHMARKS", "DATASET_FILE"]

_REFERENCE = (("ROUGE1", "rouge1", 44.4312), ("ROUGE2", "rouge2", 22.0352), ("ROUGEL", "rougeL", 28.6162))
TOKENS_PER_SAMPLE = 294.45
SAMPLES = 24576
DATASET_FILE = "open_orca_gpt4_tokenized_llama.sampled_24576.pkl"  # MLCommons OpenOrca, pre-tokenized
# Before v5.1 a closed datacenter result needed both Server and Offline; from v5.1 Offline plus one of Server and
# Interactive (MODEL_CONFIG required-/optional-scenarios-datacenter, loader.py "one of Server/Interactive").
_BOTH_REQUIRED = {"required_scenarios": {"datacenter": ("Offline", "Server")}, "one_of_scenarios": {}}


def _facts(name: str, factor: float, rounds: tuple[str, ...]) -> BenchmarkFacts:
    metrics = tuple(Metric(pattern, key, value, factor) for pattern, key, value in _REFERENCE)
    metrics += (Metric("TOKENS_PER_SAMPLE", "tokens_per_sample", TOKENS_PER_SAMPLE, 0.9, 1.1),)
    return BenchmarkFacts(
        name=name,
        family="llama2_70b",
        title=f"Llama 2 70B ({factor * 100:g} % of the FP32 reference's ROUGE)",
        reference_model="meta-llama/Llama-2-70b-chat-hf",
        loadgen_model="llama2-70b",
        loadgen_model_interactive="llama2-70b-interactive",
        dataset=DATASET_FILE,
        dataset_samples=SAMPLES,
        performance_samples=SAMPLES,
        accuracy_samples=SAMPLES,
        metrics=metrics,
        latency={"Server": LatencyLimits(2000, 200), "Interactive": LatencyLimits(450, 40)},
        system_types=("datacenter",),
        required_scenarios={"datacenter": ("Offline",)},
        one_of_scenarios={"datacenter": ("Server", "Interactive")},
        compliance_tests=("TEST06",),
        generation=Generation(max_new_tokens=1024, min_new_tokens=1, greedy=True),
        rounds=rounds,
        min_queries={"Server": 270336, "Offline": 1},
        calibration_file="open_orca_gpt4_tokenized_llama.calibration_1000.pkl",
        calibration_dir="calibration-openorca-1000",
        round_overrides={r: _BOTH_REQUIRED for r in ("v4.0", "v4.1", "v5.0")},
    )


BENCHMARKS = (
    _facts("llama2-70b-99", 0.99, ("v4.0", "v4.1", "v5.0", "v5.1", "v6.0")),
    _facts("llama2-70b-99.9", 0.999, ("v4.0", "v4.1", "v5.0", "v5.1", "v6.0", "v6.1")),
)
