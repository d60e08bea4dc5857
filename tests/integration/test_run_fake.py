"""`harness run` end to end with real LoadGen (the default round's, and round v4.0's in its own environment) and the
instant fake backend (stands in for a model)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from harness.rounds import DEFAULT_ROUND, round_spec
from tests.integration.runs import REPO, detail, harness, manifest, round_python

V40_SEEDS = (13281865557512327830, 198141574272810017, 7575108116881280410)
FAKE = ["--set", "backend.kind=fake", "--no-progress"]


def _seeds(round_name: str) -> tuple[int, int, int]:
    seeds = round_spec(round_name).seeds
    return seeds.qsl, seeds.sample_index, seeds.schedule


def test_offline_performance_run_writes_official_logs_and_an_honest_manifest(tmp_path: Path) -> None:
    run = tmp_path / "offline"
    result = harness("run", *FAKE, "--output-dir", str(run), env={"HF_TOKEN": "hf_very_secret"})
    assert result.returncode == 0, result.stderr
    log = detail(run)
    assert log["__errors__"] == []
    assert (log["effective_qsl_rng_seed"], log["effective_sample_index_rng_seed"],
            log["effective_schedule_rng_seed"]) == _seeds(DEFAULT_ROUND) == _seeds("v6.1")
    assert log["requested_use_token_latencies"] is True and log["result_validity"] == "VALID"
    assert log["effective_scenario"] == "Offline"
    data = manifest(run)
    assert data["status"] == "completed" and data["submittable"] is False
    assert (data["round"], data["benchmark"]) == ("v6.1", "llama2-70b-99.9")
    assert any(reason["code"] == "test-fake" and "test fake" in reason["text"]
               for reason in data["not_submittable_reasons"])
    assert data["response_dtype"] == "int32" and round_spec("v6.1").loadgen_matches(
        data["versions"]["mlcommons-loadgen"])
    for name, digest in data["files"].items():
        assert hashlib.sha256((run / name).read_bytes()).hexdigest() == digest
    assert {"user.conf", "config.yaml", "samples.jsonl", "mlperf_log_summary.txt",
            "network_counters_before.json", "network_counters_delta.json"} <= set(data["files"])
    assert "mlperf.conf" not in data["files"]  # compiled into LoadGen since v5.0
    everything = "".join(p.read_text(errors="ignore") for p in run.iterdir() if p.is_file())
    assert "hf_very_secret" not in everything


def test_round_v4_0_runs_with_its_own_loadgen_and_the_rounds_mlperf_conf(tmp_path: Path) -> None:
    run = tmp_path / "v4.0"
    result = harness("run", *FAKE, "--set", "round=v4.0", "--set", "benchmark=llama2-70b-99", "--output-dir",
                     str(run), python=round_python("v4.0"))
    assert result.returncode == 0, result.stderr
    log = detail(run)
    assert log["__errors__"] == []
    assert (log["effective_qsl_rng_seed"], log["effective_sample_index_rng_seed"],
            log["effective_schedule_rng_seed"]) == V40_SEEDS == _seeds("v4.0")
    data = manifest(run)
    assert data["versions"]["mlcommons-loadgen"] == "4.0.1" and "mlperf.conf" in data["files"]
    assert (run / "mlperf.conf").read_text() == (REPO / "harness/data/mlperf-v4.0.conf").read_text()
    refused = harness("run", *FAKE, "--set", "round=v4.0", "--output-dir", str(tmp_path / "default-env"))
    assert refused.returncode == 3 and "install-loadgen-round.sh v4.0" in refused.stderr
    assert not (tmp_path / "default-env").exists() or not any((tmp_path / "default-env").iterdir())


def test_an_edge_single_stream_run_issues_one_query_at_a_time(tmp_path: Path) -> None:
    run = tmp_path / "ss"
    result = harness("run", *FAKE, "--set", "benchmark=llama3.1-8b-edge", "--scenario", "SingleStream",
                     "--set", "backend.output_tokens=8", "--set", "loadgen.target_latency=50", "--output-dir",
                     str(run))
    assert result.returncode == 0, result.stderr
    log = detail(run)
    assert log["requested_single_stream_expected_latency_ns"] == 50_000_000  # loadgen.target_latency reaches it
    assert log["__errors__"] == [] and log["effective_scenario"] == "SingleStream"
    assert log["requested_use_token_latencies"] is True and log["result_validity"] == "VALID"
    assert log["result_first_token_99.00_percentile_latency_ns"] > 0
    assert log["result_query_count"] >= manifest(run)["sample_count"]
    assert "latency p99" in result.stdout
    refused = harness("run", *FAKE, "--scenario", "SingleStream", "--output-dir", str(tmp_path / "llama2"))
    assert refused.returncode == 2 and "not a scenario of llama2-70b-99.9" in refused.stderr


def test_server_run_reports_first_tokens_and_token_latencies(tmp_path: Path) -> None:
    run = tmp_path / "server"
    result = harness("run", *FAKE, "--scenario", "Server", "--set", "loadgen.target_qps=40",
                     "--set", "backend.first_token_delay_ms=2", "--output-dir", str(run))
    log = detail(run)
    assert log["__errors__"] == [], log["__errors__"]
    assert log["effective_scenario"] == "Server"
    assert log["result_first_token_99.00_percentile_latency_ns"] > 0
    assert "result_time_per_output_token_99.00_percentile_ns" in log
    assert result.returncode in (0, 1)  # 1 only when LoadGen judges the tiny run INVALID (early stopping)
    assert (result.returncode == 0) == (log["result_validity"] == "VALID")


def test_accuracy_log_holds_int32_responses_with_one_eos(tmp_path: Path) -> None:
    run = tmp_path / "acc"
    harness("run", *FAKE, "--set", "backend.output_tokens=7", "--mode", "accuracy", "--output-dir", str(run))
    import json

    entries = json.loads((run / "mlperf_log_accuracy.json").read_text())
    assert len({e["qsl_idx"] for e in entries}) == manifest(run)["sample_count"]
    for entry in entries:
        tokens = np.frombuffer(bytes.fromhex(entry["data"]), np.int32)
        assert len(tokens) == entry["token_count"] == 7 and tokens[-1] == 2 and list(tokens).count(2) == 1


def test_an_existing_run_directory_is_never_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "kept"
    run.mkdir()
    (run / "mlperf_log_detail.txt").write_text("a previous run")
    result = harness("run", *FAKE, "--output-dir", str(run))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert (run / "mlperf_log_detail.txt").read_text() == "a previous run"


def test_a_stray_audit_config_in_the_working_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "audit.config").write_text("*.*.mode = 2\n")
    result = harness("run", *FAKE, cwd=tmp_path)
    assert result.returncode == 2 and "audit.config" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_a_round_the_installed_loadgen_cannot_produce_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = harness("run", *FAKE, "--set", "round=v5.1", "--output-dir", str(tmp_path / "r"))
    assert result.returncode == 3
    assert "mlcommons-loadgen 6.0.17 is installed" in result.stderr and "pip install" in result.stderr
    assert "./scripts/install-loadgen-round.sh v5.1" in result.stderr
    assert not (tmp_path / "r").exists()


def test_bad_config_value_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    result = harness("run", *FAKE, "--set", "generation.max_new_tokens=1")
    assert result.returncode == 2
    assert result.stderr.startswith("error: generation.max_new_tokens:") and "Traceback" not in result.stderr


def _start_slow_run(run: Path) -> subprocess.Popen[str]:
    """A fake-backend run whose samples take a minute; returns once LoadGen has started logging."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "harness", "run", *FAKE, "--set", "backend.delay_ms=60000",
                                "--output-dir", str(run)], env=env, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "mlperf_log_detail.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return process


def test_ctrl_c_stops_loadgen_and_marks_the_run_aborted(tmp_path: Path) -> None:
    run = tmp_path / "interrupted"
    process = _start_slow_run(run)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    data = manifest(run)
    assert data["status"] == "aborted" and data["submittable"] is False
    assert (run / "mlperf_log_summary.txt").exists()


def test_sigterm_marks_the_run_failed_with_the_reason(tmp_path: Path) -> None:
    """A batch time limit or scancel sends SIGTERM: the run directory must not stay 'running'."""
    run = tmp_path / "terminated"
    process = _start_slow_run(run)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 4, stderr
    data = manifest(run)
    assert data["status"] == "failed" and "terminated by signal 15" in data["error"]
