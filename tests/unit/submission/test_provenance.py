"""Provenance: runs of one scenario must agree with each other and with the system description."""

from __future__ import annotations

import json
from pathlib import Path

from harness.artifacts import Manifest
from submission.provenance import command_line, contradictions, deviations, run_facts
from submission.system import load_system
from tests.unit.submission import trees


def _manifest(**values: object) -> Manifest:
    base: dict[str, object] = {"round": "v4.0", "benchmark": "llama2-70b-99", "scenario": "Offline",
                               "mode": "performance", "backend": "trtllm", "backend_name": "TensorRT-LLM",
                               "model": "/models/llama2-70b-fp8", "dataset": "open_orca.pkl", "sample_count": 24576,
                               "details": {"dataset_sha256": "a" * 64,
                                           "launch": {"world_size": 16, "host": "node1"},
                                           "replicas": {"names": ["node1:0", "node2:0"]}}}
    return Manifest.model_validate(base | values)


def _facts(role: str, manifest: Manifest, dtype: str = "float16") -> object:
    return run_facts(role, Path(f"runs/{role}"), manifest, {"backend": {"dtype": dtype}, "model": {}})


def test_matching_runs_on_the_described_system_have_no_contradiction() -> None:
    system = load_system(trees.SYSTEM)
    runs = [_facts("Performance", _manifest()), _facts("Accuracy", _manifest(mode="accuracy"))]
    assert contradictions(runs, system, "sys.json") == []  # type: ignore[arg-type]


def test_a_different_dataset_and_backend_and_hardware_are_each_one_line() -> None:
    system = load_system(trees.SYSTEM)
    other = _manifest(mode="accuracy", backend="hf", backend_name="transformers",
                      details={"dataset_sha256": "b" * 64, "launch": {"world_size": 1, "host": "laptop"}})
    found = contradictions([_facts("Performance", _manifest()), _facts("Accuracy", other)], system,  # type: ignore[list-item]
                           "sys.json")
    assert any("different dataset sha256" in line and "runs/Accuracy: " + "b" * 64 in line for line in found)
    assert any("different backend" in line for line in found)
    assert any("framework is" in line and "ran backend transformers" in line for line in found)
    assert any("16 accelerators" in line and "1 rank(s)" in line for line in found)
    assert all("\n" not in line for line in found)


def test_the_same_model_path_with_other_weights_is_a_contradiction() -> None:
    """details.model_sha256 (harness.model_hash) is compared across the runs of one scenario directory."""
    system = load_system(trees.SYSTEM)
    details = _manifest().details
    perf = _manifest(details=details | {"model_sha256": "c" * 64})
    acc = _manifest(mode="accuracy", details=details | {"model_sha256": "d" * 64})
    found = contradictions([_facts("Performance", perf), _facts("Accuracy", acc)], system,  # type: ignore[list-item]
                           "sys.json")
    assert [line for line in found if "different model sha256" in line] == [
        f"runs of one scenario used different model sha256 (Performance runs/Performance: {'c' * 64}; Accuracy "
        f"runs/Accuracy: {'d' * 64}); expected the same for its performance, accuracy and TEST06 runs"]
    same = _manifest(mode="accuracy", details=details | {"model_sha256": "c" * 64})
    assert contradictions([_facts("Performance", perf), _facts("Accuracy", same)], system,  # type: ignore[list-item]
                          "sys.json") == []
    unrecorded = contradictions([_facts("Performance", perf), _facts("Accuracy", _manifest(mode="accuracy"))],
                                system, "sys.json")  # type: ignore[list-item]
    assert any("different model sha256" in line and "Accuracy runs/Accuracy: not recorded" in line
               for line in unrecorded)


def test_deviations_come_from_what_ran() -> None:
    fake = _manifest(backend="fake", backend_name="fake (fixed)", sample_count=64, dataset="embedded smoke set",
                     deviations=["model: SmolLM2-135M-Instruct instead of Llama-2-70b-chat-hf"])
    found = deviations(_facts("Performance", fake), fake)  # type: ignore[arg-type]
    assert found[0].startswith("backend fake (fixed) is a test fake") and not any("SmolLM2" in d for d in found)
    assert any("64 samples, sha256 " + "a" * 64 in d for d in found)
    gguf = _manifest(backend="hf")
    facts = run_facts("Accuracy", Path("runs/a"), gguf, {"backend": {"dtype": "float32"},
                                                         "model": {"path": "/m/llama-2-7b.Q4_1.gguf"}})
    assert any("GGUF" in d and "float32" in d for d in deviations(facts, gguf))


def test_commands_are_module_invocations_with_paths_relative_to_the_run_root() -> None:
    manifest = _manifest(command=["/work/x/harness/__main__.py", "run", "--output-dir", "/data/runs/off",
                                  "--config", "/data/cfg/a b.yaml", "--set", "model.path=/data/models/m"],
                         environment={"CUDA_VISIBLE_DEVICES": "0,1"},
                         details={"cwd": "/data"})
    line = command_line(manifest, Path("/data/runs/off"))
    assert line == ("CUDA_VISIBLE_DEVICES=0,1 python -m harness run --output-dir runs/off --config 'cfg/a b.yaml' "
                    "--set model.path=models/m")
    assert "/work" not in line and json.dumps(line)


def test_in_process_engines_record_their_caching_from_what_they_ran_with() -> None:
    """hf and fake keep no KV cache across queries; vllm and trtllm start with exactly the config's setting."""
    from submission.provenance import caching_problems

    hf = _manifest(backend="hf", backend_name="transformers")
    assert run_facts("Performance", Path("runs/hf"), hf, {"backend": {}, "model": {}}).prefix_caching == "off"
    off = run_facts("Performance", Path("runs/t"), _manifest(), {"backend": {"enable_block_reuse": False}})
    on = run_facts("Accuracy", Path("runs/t"), _manifest(), {"backend": {"enable_block_reuse": True}})
    assert (off.prefix_caching, on.prefix_caching) == ("off", "on")
    assert caching_problems([off, on]) == ["the Accuracy run runs/t: backend.enable_block_reuse (trtllm in process) "
                                           "is on at in-process; set backend.enable_block_reuse: false"]
    recorded = _manifest(backend="vllm", details={"engines": [{"url": "in-process", "engine": "vllm",
                                                               "version": "0.32.0", "prefix_caching": "off"}]})
    assert run_facts("Performance", Path("runs/v"), recorded, {"backend": {"enable_prefix_caching": True}}
                     ).prefix_caching == "off"  # the engine's own record wins over the config


def test_an_endpoint_run_recorded_before_engines_were_is_named_not_guessed() -> None:
    from submission.provenance import caching_problems

    old = _manifest(backend="endpoint", backend_name="endpoint (vllm, m, 1 URL)",
                    details={"launch": {"world_size": 1, "host": "node1"}})
    facts = run_facts("Performance", Path("runs/e"), old, {"backend": {}, "model": {}})
    found = contradictions([facts], load_system(trees.SYSTEM), "sys.json")
    assert found == ["sys.json: the Performance run runs/e recorded no served engine (a manifest from before engines "
                     "were recorded); expected details.engines; rerun it with this harness"]
    assert caching_problems([facts]) == ["the Performance run runs/e: cross-query prefix caching of backend endpoint "
                                         "(vllm, m, 1 URL) was not recorded (a manifest from before it was); rerun "
                                         "with this harness, which records it"]


def _setup(manifest: Manifest) -> list[str]:
    """The run's deviations besides prefix caching (unrecorded for these hand-made manifests)."""
    found = deviations(_facts("Performance", manifest), manifest)  # type: ignore[arg-type]
    return [line for line in found if not line.startswith("cross-query prefix caching")]


def test_deviations_compare_with_the_runs_own_benchmark_reference() -> None:
    """A full-size Llama 3.1 8B run on Llama 3.1 8B weights deviates in nothing; the same run on the smoke set, or on
    Llama 2 70B weights, names Llama 3.1 8B's reference (not Llama 2's OpenOrca set or checkpoint)."""
    full = _manifest(round="v6.1", benchmark="llama3.1-8b", model="/models/Llama-3.1-8B-Instruct",
                     dataset="cnn_eval.json", sample_count=13368)
    assert _setup(full) == []
    smoke = _manifest(round="v6.1", benchmark="llama3.1-8b", model="/models/Llama-3.1-8B-Instruct",
                      dataset="smoke_cnn_dailymail.json", sample_count=41)
    found = _setup(smoke)
    assert found == [f"dataset: smoke_cnn_dailymail.json (41 samples, sha256 {'a' * 64}) instead of the 13,368-sample "
                     "reference set cnn_eval.json"]
    other = _manifest(round="v6.1", benchmark="llama3.1-8b", model="/models/llama2-70b", dataset="cnn_eval.json",
                      sample_count=13368)
    assert _setup(other) == [
        "model: /models/llama2-70b instead of meta-llama/Llama-3.1-8B-Instruct"]
    edge = _manifest(round="v6.1", benchmark="llama3.1-8b-edge", model="/models/Llama-3.1-8B-Instruct",
                     dataset="sample_cnn_eval_5000.json", sample_count=5000)
    assert _setup(edge) == []
