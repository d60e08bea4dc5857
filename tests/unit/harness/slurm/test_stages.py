"""The stage registry: built-in run/accuracy/compliance stages and registration of new ones."""

from __future__ import annotations

import pytest

from harness.config import build_config
from harness.errors import ConfigError
from harness.slurm import stages
from harness.slurm.stages import StageCommand, StageOptions, TasksLayout, build_stage, register, stage_names

CONFIG = build_config({"backend": {"kind": "fake"}, "slurm": {"nodes": 2, "ntasks_per_node": 3,
                                                              "gpus_per_node": 4, "python": "python3.11"}})
OPTIONS = StageOptions(config_path="/jobs/run.config.yaml")


def test_builtin_stages_are_registered_in_order() -> None:
    assert stage_names()[:4] == ["preflight", "run", "accuracy", "compliance"]


def test_preflight_stage_writes_its_json_per_job_on_every_rank() -> None:
    command = build_stage("preflight", CONFIG, OPTIONS)
    assert command.argv == ("python3.11", "-m", "harness", "preflight", "--config", "/jobs/run.config.yaml",
                            "--json", "preflight-${SLURM_JOB_ID}.json")
    assert command.layout.mpi and command.layout.ntasks == 6


def test_run_stage_runs_the_config_as_written_on_every_rank() -> None:
    command = build_stage("run", CONFIG, OPTIONS)
    assert command.argv == ("python3.11", "-m", "harness", "run", "--config", "/jobs/run.config.yaml",
                            "--output-dir", "runs/performance-${SLURM_JOB_ID}")
    assert command.layout == TasksLayout(nodes=2, ntasks_per_node=3, gpus_per_node=4, mpi=True)
    assert command.needs_gpus


def test_accuracy_stage_forces_accuracy_mode_and_honours_output_dir() -> None:
    config = build_config(CONFIG.model_dump(mode="json"), ["output_dir=/runs/acc"])
    command = build_stage("accuracy", config, OPTIONS)
    assert command.argv[-4:] == ("--mode", "accuracy", "--output-dir", "/runs/acc")


def test_compliance_stage_calls_the_compliance_script_for_test06() -> None:
    command = build_stage("compliance", CONFIG, StageOptions("/j/c.yaml", run_dir="/runs/t6"))
    assert command.argv == ("python3.11", "-m", "compliance", "run", "TEST06", "--config", "/j/c.yaml",
                            "--output-dir", "/runs/t6")


def test_unknown_stage_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="registered stages: preflight, run, accuracy, compliance"):
        build_stage("quantise", CONFIG, OPTIONS)


def test_a_new_stage_can_be_registered_once_and_replaced_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stages, "_REGISTRY", dict(stages._REGISTRY))

    def quantize(config: object, options: StageOptions) -> StageCommand:
        return StageCommand(("trtllm-quantize", options.config_path), "quantize", True, TasksLayout(gpus_per_node=8))

    register("calibrate", quantize)
    assert build_stage("calibrate", CONFIG, OPTIONS).argv == ("trtllm-quantize", "/jobs/run.config.yaml")
    with pytest.raises(ConfigError, match="already registered"):
        register("calibrate", quantize)
    register("calibrate", quantize, replace=True)
    with pytest.raises(ConfigError, match="not an identifier"):
        register("bad name", quantize)


def test_compliance_stage_runs_the_benchmarks_own_tests() -> None:
    gpt = build_config({"benchmark": "gpt-oss-120b", "backend": {"kind": "fake"}, "slurm": {"python": "python3.11"}})
    command = build_stage("compliance", gpt, StageOptions("/j/c.yaml", run_dir="/runs/t7"))
    assert command.argv[:5] == ("python3.11", "-m", "compliance", "run", "TEST07")
    assert command.description.startswith("TEST07 compliance run")
    second = build_config({"benchmark": "gpt-oss-120b", "compliance_test": "TEST09", "backend": {"kind": "fake"}})
    assert build_stage("compliance", second, StageOptions("/j/c.yaml", run_dir="/r")).argv[4] == "TEST09"
    wrong = build_config({"benchmark": "gpt-oss-120b", "compliance_test": "TEST06", "backend": {"kind": "fake"}})
    with pytest.raises(ConfigError, match="gpt-oss-120b has TEST07, TEST09"):
        build_stage("compliance", wrong, StageOptions("/j/c.yaml", run_dir="/r"))
