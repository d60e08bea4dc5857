"""`harness run` with the real SmolLM2-135M (hf backend, CPU) and real LoadGen: both scenarios, both modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.integration.runs import detail, harness, manifest

pytestmark = pytest.mark.model
SHORT = ["--no-progress", "--set", "dataset.max_samples=4", "--set", "generation.max_new_tokens=12",
         "--set", "backend.max_batch_size=4"]


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_performance_run_of_the_real_model_has_no_loadgen_errors(tmp_path: Path, scenario: str) -> None:
    run = tmp_path / scenario
    result = harness("run", *SHORT, "--scenario", scenario, "--set", "loadgen.target_qps=2", "--output-dir", str(run))
    log = detail(run)
    assert log["__errors__"] == [], log["__errors__"]
    assert result.returncode == (0 if log["result_validity"] == "VALID" else 1), result.stderr
    data = manifest(run)
    assert data["status"] == "completed" and data["backend"] == "hf"
    assert "SmolLM2" in data["backend_name"] and data["versions"]["torch"]
    import hashlib

    from harness.model_files import embedded_model
    gguf = Path(embedded_model().display)
    assert data["details"]["model_files"] == str(gguf)  # the loaded weights' hash (harness.model_hash)
    assert data["details"]["model_sha256"] == hashlib.sha256(gguf.read_bytes()).hexdigest()
    if scenario == "Offline":
        assert log["result_tokens_per_second"] > 0
    else:
        assert log["result_first_token_99.00_percentile_latency_ns"] > 0
        assert log["result_time_per_output_token_99.00_percentile_ns"] > 0


@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_accuracy_run_of_the_real_model_scores_rouge(tmp_path: Path, scenario: str) -> None:
    run = tmp_path / scenario
    result = harness("run", *SHORT, "--scenario", scenario, "--mode", "accuracy", "--set", "loadgen.target_qps=4",
                     "--output-dir", str(run))
    assert result.returncode == 0, result.stderr
    assert detail(run)["__errors__"] == []
    import json
    import re

    entries = json.loads((run / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == [0, 1, 2, 3]
    eos = manifest(run)["eos_token_id"]
    for entry in entries:
        tokens = list(np.frombuffer(bytes.fromhex(entry["data"]), np.int32))
        assert 2 <= len(tokens) == entry["token_count"] <= 12
        assert tokens.count(eos) <= 1 and (eos not in tokens or tokens[-1] == eos)
        if scenario == "Server":
            assert np.frombuffer(bytes.fromhex(entry["token_data"]), np.int32)[0] == tokens[0]
    lines = (run / "accuracy.txt").read_text().splitlines()
    for key in ("rouge1", "rouge2", "rougeL", "tokens_per_sample"):
        assert any(re.match(rf".*'{key}':\s([\d.]+).*", line) for line in lines), key
