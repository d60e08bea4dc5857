"""gpt-oss-120b (AIME25, GPQA-Diamond, LiveCodeBench v6; exact match), as the official checker and reference state it.

Sources: mlcommons/inference at b66003e1: tools/submission/submission_checker/constants.py (MODEL_CONFIG of v6.0 and
v6.1: required Offline, one of Interactive/Server, datacenter; accuracy ``("exact_match", 83.13 * 0.99)``, upper
``("TOKENS_PER_SAMPLE", 1.1 * 9999)``; performance-sample-count and dataset-size 6,396, accuracy-sample-count 4,395;
min queries SingleStream 1024, Server 270336, Offline 1; models_TEST07 and models_TEST09; LLM_LATENCY_LIMITS Server
3000/80 ms, Interactive 2000/15 ms; TEST09_LOW/HIGH 1150.38/1406.02), loadgen/mlperf.conf (LoadGen names gpt-oss-120b
and gpt-oss-120b-interactive, performance_sample_count_override 6396, accuracy_sample_count_override 4395),
language/gpt-oss-120b/generation_config.json (temperature 1.0, top_k -1 = off, top_p 1.0, max_new_tokens 32768) and
its README (performance runs and TEST07/TEST09 cap the output at 10,240 tokens; the reasoning effort is part of each
dataset's harmony-formatted prompts: high in the accuracy set, low in the performance set), compliance/TEST07 and
TEST09 audit.config (the compliance sets and thresholds).
"""

from __future__ import annotations

from harness.benchmarks.facts import BenchmarkFacts, Generation, LatencyLimits, Metric

__all__ = ["ACCURACY_FILE", "BENCHMARKS", "PERFORMANCE_FILE", "REPEATS", "STOP_TOKEN_IDS", "TEST07_FILE",
           "TEST07_SAMPLES", "TEST07_THRESHOLD", "TEST09_HIGH", "TEST09_LOW"]

# The MLCommons download (mlcr get-dataset-mlperf-inference-gpt-oss): perf/ and acc/ folders of parquet files
# (pickles of the same DataFrames are still published for older scripts).
PERFORMANCE_FILE = "perf/perf_eval_ref.parquet"  # 6,396 prompts, reasoning effort low
ACCURACY_FILE = "acc/acc_eval_inputs.parquet"  # 4,395 = 30 AIME25 x8 + 198 GPQA-Diamond x5 + 1,055 LiveCodeBench x3
TEST07_FILE = "acc/acc_eval_compliance_gpqa.parquet"  # 990 GPQA prompts, reasoning effort high
PERFORMANCE_SAMPLES, ACCURACY_SAMPLES, TEST07_SAMPLES = 6396, 4395, 990
# eval_mlperf_accuracy.py: each problem is asked this many times; pass@1 averages over the repeats
REPEATS = {"aime25": 8, "gpqa_diamond": 5, "livecodebench_v6": 3}
TEST07_THRESHOLD = 60.698  # compliance/TEST07/gpt-oss-120b/audit.config test07_accuracy_threshold
TEST09_LOW, TEST09_HIGH = 1150.38, 1406.02  # mean output tokens, +/-10 % of the reference's 1278.20
# The harmony stop tokens the checkpoint's generation_config.json lists as EOS: <|return|>, <|endoftext|>, <|call|>
# (openai-harmony's stop_tokens_for_assistant_actions() gives <|return|> and <|call|>; tests check them against it).
STOP_TOKEN_IDS = (200002, 199999, 200012)

BENCHMARKS = (
    BenchmarkFacts(
        name="gpt-oss-120b",
        family="gpt_oss_120b",
        title="gpt-oss-120b (AIME25, GPQA-Diamond, LiveCodeBench v6; 99 % of the reference's exact match)",
        reference_model="openai/gpt-oss-120b",
        loadgen_model="gpt-oss-120b",
        loadgen_model_interactive="gpt-oss-120b-interactive",
        dataset=PERFORMANCE_FILE,
        dataset_samples=PERFORMANCE_SAMPLES,
        performance_samples=PERFORMANCE_SAMPLES,
        accuracy_samples=ACCURACY_SAMPLES,
        # the checker has no lower TOKENS_PER_SAMPLE target for gpt-oss-120b, only the upper limit
        metrics=(Metric("exact_match", "exact_match", 83.13, 0.99),
                 Metric("TOKENS_PER_SAMPLE", "tokens_per_sample", 9999, None, 1.1)),
        latency={"Server": LatencyLimits(3000, 80), "Interactive": LatencyLimits(2000, 15)},
        system_types=("datacenter",),
        required_scenarios={"datacenter": ("Offline",)},
        one_of_scenarios={"datacenter": ("Server", "Interactive")},
        compliance_tests=("TEST07", "TEST09"),
        compliance_samples={"TEST07": TEST07_SAMPLES},
        generation=Generation(max_new_tokens=32768, min_new_tokens=1, greedy=False, temperature=1.0, top_p=1.0,
                              top_k=0, performance_max_new_tokens=10240, stop_token_ids=STOP_TOKEN_IDS),
        rounds=("v6.0", "v6.1"),
        min_queries={"Server": 270336, "Offline": 1},
    ),
)
