"""quantize -> convert -> build stages, presets and rendered Slurm scripts (bash -n, shellcheck, real execution).

The rendered scripts are executed with stand-in `srun` and `trtllm-llmapi-launch` executables on PATH that
record the argv they receive: that checks the quoting end to end without a GPU cluster.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.trtllm_stages import (
    PRESETS,
    SlurmJob,
    StageCommand,
    build_argv,
    convert_argv,
    launch_prefix,
    pipeline_for,
    preset,
    quantize_argv,
    render_sbatch,
    run_command,
    stage_commands,
)

SEED = preset("h100-fp8")  # 2 nodes x 8 GPUs, TP8 x PP2, as in the seed
JOB = SlurmJob(partition="gpu", container_image="/lustre/images/trtllm-1.2.1.sqsh",
               container_mounts="/lustre/models:/models")
HARNESS_ARGS = ["--config", "/work/llama2-70b-offline.yaml", "--output-dir", "/work/runs/offline-perf"]


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_seed_layout_names_one_checkpoint_and_one_engine_dir() -> None:
    quantize, build = quantize_argv(SEED), build_argv(SEED)
    assert _flag(quantize, "--output_dir") == _flag(build, "--checkpoint_dir") == SEED.checkpoint_dir
    assert SEED.checkpoint_dir.endswith("tllm_checkpoint_16gpu_tp8_pp2")
    assert (_flag(quantize, "--tp_size"), _flag(quantize, "--pp_size")) == ("8", "2")
    assert (_flag(quantize, "--qformat"), _flag(quantize, "--kv_cache_dtype")) == ("fp8", "fp8")
    assert _flag(build, "--output_dir") == SEED.engine_dir and _flag(build, "--workers") == "8"
    assert [c.name for c in stage_commands(SEED)] == ["quantize", "build"]


def test_quantize_and_convert_together_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"quantize\.py replaces convert_checkpoint\.py"):
        preset("h100-fp8", convert={"dtype": "float16"})


def test_convert_reads_hf_weights_with_model_dir() -> None:
    argv = convert_argv(preset("a100-fp16"))
    assert "--model_dir" in argv and "--meta_ckpt_dir" not in argv
    with pytest.raises(ConfigError, match="no convert stage"):
        convert_argv(SEED)


def test_a100_preset_is_int8_smoothquant() -> None:
    argv = quantize_argv(preset("a100-int8"))
    assert (_flag(argv, "--qformat"), _flag(argv, "--kv_cache_dtype")) == ("int8_sq", "int8")
    assert "--use_fp8_context_fmha" not in build_argv(preset("a100-int8"))


def test_pytorch_flow_has_no_build_and_runs_the_hf_checkpoint() -> None:
    pipe = preset("h100-fp8-pytorch")
    argv = quantize_argv(pipe)
    assert argv[1].endswith("llm_ptq/hf_ptq.py") and _flag(argv, "--export_path") == pipe.hf_quantized_dir
    assert [c.name for c in stage_commands(pipe)] == ["quantize"]
    run = run_command(pipe, HARNESS_ARGS).argv
    assert "backend.backend=pytorch" in run and f"model.path={pipe.hf_quantized_dir}" in run
    assert "backend.kv_cache_dtype=fp8" in run
    with pytest.raises(ConfigError, match="no build step"):
        preset("h100-fp8-pytorch", build={})


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="expected one of h100-fp8"):
        preset("b200-fp4")


def test_seed_run_launches_trtllm_llmapi_launch_under_srun_pmix() -> None:
    run = run_command(SEED, HARNESS_ARGS)
    assert (run.nodes, run.ntasks_per_node, run.mpi) == (2, 8, "pmix")
    assert run.argv[:5] == ["trtllm-llmapi-launch", "python3", "-m", "harness", "run"]
    assert "backend.backend=tensorrt" in run.argv and f"model.path={SEED.engine_dir}" in run.argv
    script = render_sbatch(run, JOB)
    assert "srun --mpi=pmix --nodes=2 --ntasks-per-node=8" in script
    assert "#SBATCH --nodes=2" in script and "trtllm-llmapi-launch python3 -m harness run" in script


def test_two_tp8_replicas_are_one_rank_per_node() -> None:
    run = run_command(preset("h100-fp8", pipeline_parallel_size=1), HARNESS_ARGS, replicas=2)
    assert (run.nodes, run.ntasks_per_node, run.mpi) == (2, 1, "pmix")
    assert "trtllm-llmapi-launch" not in run.argv and "distributed.replicas=2" in run.argv
    with pytest.raises(ConfigError, match="do not fit one 8-GPU node"):
        run_command(SEED, HARNESS_ARGS, replicas=2)


def test_launcher_refuses_arguments_it_would_resplit() -> None:
    with pytest.raises(ConfigError, match="re-splits the command on spaces"):
        run_command(SEED, ["--config", "/work/my configs/offline.yaml"])


def _all_scripts() -> dict[str, str]:
    scripts = {}
    for name in PRESETS:
        pipe = preset(name)
        commands: list[StageCommand] = [*stage_commands(pipe), run_command(pipe, HARNESS_ARGS)]
        scripts.update({f"{name}-{c.name}.sbatch": render_sbatch(c, JOB) for c in commands})
    replicas = run_command(preset("h100-fp8", pipeline_parallel_size=1), HARNESS_ARGS, replicas=2)
    scripts["replicas-run.sbatch"] = render_sbatch(replicas, SlurmJob())
    return scripts


def test_rendered_scripts_pass_bash_n_and_shellcheck(tmp_path: Path) -> None:
    scripts = _all_scripts()
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    paths = sorted(str(tmp_path / name) for name in scripts)
    for path in paths:
        assert subprocess.run(["bash", "-n", path], capture_output=True, text=True).returncode == 0, path
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    checked = subprocess.run(["shellcheck", "--shell=bash", *paths], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout


def _stub(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_rendered_run_script_delivers_the_exact_argv(tmp_path: Path) -> None:
    """Run the script with stand-ins: srun records its argv, then trtllm-llmapi-launch records the command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "srun", 'printf "%s\\n" "$@" > "$RECORD/srun"')
    run = run_command(SEED, HARNESS_ARGS)
    script = tmp_path / "run.sbatch"
    script.write_text(render_sbatch(run, JOB))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path)}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    recorded = (tmp_path / "srun").read_text().splitlines()
    assert recorded[:3] == ["--mpi=pmix", "--nodes=2", "--ntasks-per-node=8"]
    assert recorded[recorded.index("trtllm-llmapi-launch"):] == run.argv
    assert "--container-image=/lustre/images/trtllm-1.2.1.sqsh" in recorded


def _trtllm_run(model_path: str, backend: str = "tensorrt", pp: int = 2, replicas: int = 1) -> RunConfig:
    return build_config({"model": {"path": model_path, "tokenizer": "/models/Llama-2-70b-chat-hf"},
                         "backend": {"kind": "trtllm", "backend": backend, "tensor_parallel_size": 8,
                                     "pipeline_parallel_size": pp}, "distributed": {"replicas": replicas}})


def test_pipeline_for_a_run_config_uses_its_layout_and_paths() -> None:
    config = _trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2")
    pipe = pipeline_for(config, {"work_dir": "/lustre/trt"})
    assert pipe.engine_dir == "/lustre/trt/engine_16gpu_tp8_pp2" and pipe.hf_model_dir == "/models/Llama-2-70b-chat-hf"
    assert _flag(quantize_argv(pipe), "--pp_size") == "2"


def test_pipeline_refuses_stages_the_run_would_not_read() -> None:
    with pytest.raises(ConfigError, match=r"model\.path is /lustre/trt/engine_8gpu_tp8_pp1, but the stages write"):
        pipeline_for(_trtllm_run("/lustre/trt/engine_8gpu_tp8_pp1"), {"work_dir": "/lustre/trt"})
    with pytest.raises(ConfigError, match=r"produce a tensorrt model, but backend\.backend is 'pytorch'"):
        pipeline_for(_trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2", backend="pytorch"), {"work_dir": "/lustre/trt"})
    with pytest.raises(ConfigError, match=r"need backend\.kind trtllm"):
        pipeline_for(build_config({"backend": {"kind": "fake"}}), {})


def test_launch_prefix_only_for_one_multi_gpu_model() -> None:
    assert launch_prefix(_trtllm_run("/m")) == ["trtllm-llmapi-launch"]
    assert launch_prefix(_trtllm_run("/m", pp=1, replicas=2)) == []
    assert launch_prefix(build_config({"backend": {"kind": "fake"}})) == []
