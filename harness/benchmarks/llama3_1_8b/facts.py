"""Llama 3.1 8B (CNN/DailyMail, ROUGE, GEN_LEN): llama3.1-8b and llama3.1-8b-edge, as the official checker states them.

Sources: mlcommons/inference tools/submission/submission_checker/constants.py at b66003e1 (MODEL_CONFIG of v6.0
and v6.1, LLM_LATENCY_LIMITS), the v5.1 tag script's MODEL_CONFIG and LLM_LATENCY_LIMITS, loadgen/mlperf.conf
(LoadGen names llama3_1-8b, llama3_1-8b-interactive, llama3_1-8b-edge; 13,368 and 5,000 samples; Server TTFT/TPOT
2000/100 ms, Interactive 500/30 ms), language/llama3.1-8b/dataset.py (meta-llama/Llama-3.1-8B-Instruct, cnn_eval.json)
and SUT_VLLM.py (max_tokens 128, min_tokens 1, temperature 0).

Per round: the v5.1 tag script knows no llama3.1-8b-edge; there llama3.1-8b itself is also an edge benchmark
(SingleStream and Offline on the full 13,368 samples). The edge row (its own 5,000-sample set and targets) is in the
checker from v5.1.1 on, i.e. in the v6.0 and v6.1 blocks the project checks against. TEST06 is required of
llama3.1-8b only (models_TEST06); the edge row has no compliance test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.benchmarks.facts import BenchmarkFacts, Generation, LatencyLimits, Metric

__all__ = ["BENCHMARKS", "CALIBRATION_DIR", "CALIBRATION_FILE", "DATASET_FILE", "EDGE_DATASET_FILE"]

DATASET_FILE = "cnn_eval.json"  # MLCommons processed CNN/DailyMail 3.0.0 validation, 13,368 rows, pre-tokenized
EDGE_DATASET_FILE = "sample_cnn_eval_5000.json"  # its 5,000-row subset (edge)
CALIBRATION_FILE = "cnn_dailymail_calibration.json"  # 1,000 rows of the train split, same columns
CALIBRATION_DIR = "calibration-cnn-dailymail-1000"  # what `harness dataset calibration` writes from it
SAMPLES, EDGE_SAMPLES = 13368, 5000
_ROUGE = ("ROUGE1", "rouge1"), ("ROUGE2", "rouge2"), ("ROUGEL", "rougeL"), ("ROUGELSUM", "rougeLsum")
_GENERATION = Generation(max_new_tokens=128, min_new_tokens=1, greedy=True)
_REFERENCE_MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def _metrics(rouge: tuple[float, float, float, float], gen_len: int) -> tuple[Metric, ...]:
    """ROUGE-1/2/L/Lsum at 99 % of the reference, GEN_LEN (characters of all predictions) within 0.9-1.1x."""
    found = tuple(Metric(pattern, key, value, 0.99) for (pattern, key), value in zip(_ROUGE, rouge, strict=True))
    return (*found, Metric("GEN_LEN", "gen_len", gen_len, 0.9, 1.1))


# v5.1 (tag script): llama3.1-8b is a datacenter and an edge benchmark; edge needs SingleStream and Offline.
_V51: Mapping[str, Any] = {
    "system_types": ("datacenter", "edge"),
    "required_scenarios": {"datacenter": ("Offline",), "edge": ("SingleStream", "Offline")},
    "min_queries": {"SingleStream": 1024, "Server": 270336, "Offline": 1},
}

BENCHMARKS = (
    BenchmarkFacts(
        name="llama3.1-8b",
        family="llama3_1_8b",
        title="Llama 3.1 8B (CNN/DailyMail summarisation, 99 % of the reference's ROUGE)",
        reference_model=_REFERENCE_MODEL,
        loadgen_model="llama3_1-8b",
        loadgen_model_interactive="llama3_1-8b-interactive",
        dataset=DATASET_FILE,
        dataset_samples=SAMPLES,
        performance_samples=SAMPLES,
        accuracy_samples=SAMPLES,
        metrics=_metrics((38.7792, 15.9075, 24.4957, 35.793), 8167644),
        latency={"Server": LatencyLimits(2000, 100), "Interactive": LatencyLimits(500, 30)},
        system_types=("datacenter",),
        required_scenarios={"datacenter": ("Offline",)},
        one_of_scenarios={"datacenter": ("Server", "Interactive")},
        compliance_tests=("TEST06",),
        generation=_GENERATION,
        rounds=("v5.1", "v6.0", "v6.1"),
        min_queries={"Server": 270336, "Offline": 1},
        calibration_file=CALIBRATION_FILE,
        calibration_dir=CALIBRATION_DIR,
        round_overrides={"v5.1": _V51},
    ),
    BenchmarkFacts(
        name="llama3.1-8b-edge",
        family="llama3_1_8b",
        title="Llama 3.1 8B, edge (5,000 CNN/DailyMail articles, 99 % of the reference's ROUGE)",
        reference_model=_REFERENCE_MODEL,
        loadgen_model="llama3_1-8b-edge",
        loadgen_model_interactive=None,
        dataset=EDGE_DATASET_FILE,
        dataset_samples=EDGE_SAMPLES,
        performance_samples=EDGE_SAMPLES,
        accuracy_samples=EDGE_SAMPLES,
        metrics=_metrics((39.06, 16.1147, 24.6375, 36.124), 3051113),
        latency={},  # SingleStream is judged on its p90 query latency, not TTFT/TPOT; no LLM_LATENCY_LIMITS entry
        system_types=("edge",),
        required_scenarios={"edge": ("SingleStream", "Offline")},
        one_of_scenarios={},
        compliance_tests=(),
        generation=_GENERATION,
        rounds=("v6.0", "v6.1"),
        min_queries={"SingleStream": 1024, "Offline": 1},
        calibration_file=CALIBRATION_FILE,
        calibration_dir=CALIBRATION_DIR,
    ),
)
