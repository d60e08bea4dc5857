"""quantize -> convert -> build stages, presets, and the scripts harness.slurm renders for them.

Rendered scripts are checked with bash -n and shellcheck, and executed with a stand-in `srun` on PATH that
records the argv it receives: that checks the quoting end to end without a GPU cluster.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.backends.trtllm.preparation import (
    PRESETS,
    build_argv,
    convert_argv,
    launch_prefix,
    pipeline_for,
    preset,
    quantize_argv,
    stage_commands,
)
from harness.config import RunConfig, build_config
from harness.errors import ConfigError
from harness.slurm.render import render_text
from harness.slurm.stages import StageOptions, build_stage, stage_names
from harness.slurm.trtllm import launcher_argv
from tests.integration.standins.cli_flags import parse_quantize

SEED = preset("h100-fp8")  # 2 nodes x 8 GPUs, TP8 x PP2, as in the seed
SLURM = {"gpus_per_node": 8, "partition": "gpu", "container_image": "/lustre/images/trtllm-1.2.1.sqsh",
         "container_mounts": ["/lustre/models:/models", "/lustre/mlperf:/lustre/mlperf"],
         "container_workdir": "/lustre/mlperf"}


def seed_config(**changes: Any) -> RunConfig:
    """The seed's run: the TP8 x PP2 engine on 2 nodes x 8 GPUs."""
    data: dict[str, Any] = {
        "model": {"path": SEED.engine_dir, "tokenizer": SEED.hf_model_dir},
        "backend": {"kind": "trtllm", "backend": "tensorrt", "tensor_parallel_size": 8, "pipeline_parallel_size": 2},
        "slurm": {**SLURM, "nodes": 2, "ntasks_per_node": 8}}
    for key, value in changes.items():
        data[key] = {**data.get(key, {}), **value}
    return build_config(data)


def replicas_config() -> RunConfig:
    """The data-parallel alternative: two TP8 engines, one harness rank per node."""
    tp8 = preset("h100-fp8", pipeline_parallel_size=1)
    return seed_config(model={"path": tp8.engine_dir}, backend={"pipeline_parallel_size": 1},
                       slurm={"ntasks_per_node": 1}, distributed={"replicas": 2})


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


def test_calibration_is_the_local_mlperf_set_never_the_cnn_dailymail_download() -> None:
    """Risk 2 of issue 16: quantize.py defaults --calib_dataset to cnn_dailymail (a download, not MLPerf's set)."""
    for name in PRESETS:
        pipe = preset(name)
        if pipe.quantize is None:
            continue
        args = parse_quantize(quantize_argv(pipe)[2:])
        assert args.calib_dataset == f"{pipe.work_dir}/calibration-openorca-1000"
        assert args.calib_size == 1024
    custom = preset("h100-fp8", calib_dataset="/data/calib")
    assert parse_quantize(quantize_argv(custom)[2:]).calib_dataset == "/data/calib"


def test_convert_uses_the_examples_path_of_the_1x_releases() -> None:
    """Risk 4 of issue 16: examples/llama/ moved to examples/models/core/llama/ in 0.19."""
    argv = convert_argv(preset("a100-fp16"))
    assert argv[1] == "/app/tensorrt_llm/examples/models/core/llama/convert_checkpoint.py"


def test_a100_preset_is_int8_smoothquant() -> None:
    argv = quantize_argv(preset("a100-int8"))
    assert (_flag(argv, "--qformat"), _flag(argv, "--kv_cache_dtype")) == ("int8_sq", "int8")
    assert "--use_fp8_context_fmha" not in build_argv(preset("a100-int8"))


def test_pytorch_flow_quantizes_with_the_release_images_quantize_py_exporting_hf() -> None:
    """Risk 3 of issue 16: ModelOpt's llm_ptq/hf_ptq.py is not in the release image; quantize.py exports HF."""
    pipe = preset("h100-fp8-pytorch")
    argv = quantize_argv(pipe)
    assert argv[1] == "/app/tensorrt_llm/examples/quantization/quantize.py"
    args = parse_quantize(argv[2:])  # the release's argparse accepts every flag
    assert (args.export_format, args.output_dir) == ("hf", pipe.hf_quantized_dir)
    assert args.tp_size is None  # an HF checkpoint is not split per rank
    assert [c.name for c in stage_commands(pipe)] == ["quantize"]
    assert (pipe.runtime_backend, pipe.model_path) == ("pytorch", pipe.hf_quantized_dir)
    with pytest.raises(ConfigError, match="no build step"):
        preset("h100-fp8-pytorch", build={})


def test_stages_are_registered_with_the_slurm_renderer() -> None:
    assert {"quantize", "convert", "build", "run"} <= set(stage_names())
    quantize = build_stage("quantize", seed_config(), StageOptions(config_path="/jobs/quantize.config.yaml"))
    assert list(quantize.argv) == quantize_argv(SEED)
    assert (quantize.layout.nodes, quantize.layout.ntasks, quantize.layout.mpi, quantize.needs_gpus) == (1, 1, False,
                                                                                                         True)
    with pytest.raises(ConfigError, match="have no convert step"):
        build_stage("convert", seed_config(), StageOptions(config_path="/jobs/c.yaml"))


def _render(stage: str, config: RunConfig, job_dir: Path) -> str:
    return render_text(stage, config, job_dir)


def test_seed_run_launches_trtllm_llmapi_launch_under_srun_pmix(tmp_path: Path) -> None:
    script = _render("run", seed_config(), tmp_path)
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=8" in script
    assert "--ntasks=16" in script and "--mpi=pmix" in script
    assert "  trtllm-llmapi-launch python3 -m harness run --config" in script


@pytest.mark.parametrize("stage", ["run", "accuracy", "compliance"])
def test_replicas_in_one_mpi_world_are_refused_with_why_and_what_to_use(tmp_path: Path, stage: str) -> None:
    """Risk 7 of issue 16: each rank's LLM would MPI_Comm_spawn its workers inside the srun step, which fails."""
    with pytest.raises(ConfigError, match=r"MPI_Comm_spawn.*fails inside an srun job step") as caught:
        _render(stage, replicas_config(), tmp_path)
    assert "harness slurm render serve" in (caught.value.hint or "")


def test_two_tp8_replicas_are_two_trtllm_serve_steps_one_per_node(tmp_path: Path) -> None:
    script = _render("serve", replicas_config(), tmp_path)
    assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=9" in script  # 8 ranks + the client
    assert script.count("trtllm-llmapi-launch trtllm-serve /models/trtllm/engine_8gpu_tp8_pp1") == 2
    assert "--relative=0" in script and "--relative=1" in script


def test_launcher_needs_one_rank_per_gpu_of_the_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"= 8 ranks, but trtllm-llmapi-launch needs") as caught:
        _render("run", seed_config(slurm={"nodes": 1}), tmp_path)
    assert "slurm.nodes: 2" in (caught.value.hint or "")


def test_launcher_refuses_arguments_it_would_resplit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="re-splits the command on spaces"):
        _render("run", seed_config(), tmp_path / "my jobs")


def _all_scripts(job_dir: Path) -> dict[str, str]:
    scripts = {f"seed-{stage}.sbatch": _render(stage, seed_config(), job_dir)
               for stage in ("quantize", "build", "run", "accuracy", "compliance")}
    scripts["replicas-serve.sbatch"] = _render("serve", replicas_config(), job_dir)
    for name in PRESETS:
        pipe = preset(name)
        config = seed_config(model={"path": pipe.model_path},
                             backend={"backend": pipe.runtime_backend, "stages": {"preset": name}})
        scripts.update({f"{name}-{c.name}.sbatch": _render(c.name, config, job_dir) for c in stage_commands(pipe)})
    return scripts


def test_rendered_scripts_pass_bash_n_and_shellcheck(tmp_path: Path) -> None:
    scripts = _all_scripts(tmp_path)
    assert len(scripts) >= 12
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


@pytest.mark.parametrize("stage", ["quantize", "build", "run"])
def test_rendered_script_delivers_the_exact_argv(tmp_path: Path, stage: str) -> None:
    """Run the script with a stand-in srun that records its argv: the stage's argv arrives unchanged."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "srun", 'printf "%s\\n" "$@" > "$RECORD/srun"')
    (tmp_path / "calib").mkdir()  # under the job folder, which the job mounts
    config = seed_config(backend={"stages": {"calib_dataset": str(tmp_path / "calib")}})
    command = build_stage(stage, config, StageOptions(config_path=str(tmp_path / f"{stage}.config.yaml")))
    script = tmp_path / f"{stage}.sbatch"
    script.write_text(_render(stage, config, tmp_path))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path), "SLURM_JOB_ID": "42"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    if stage == "run":  # the stand-in srun ran nothing: no manifest, so the job fails (risk 9 of issue 16)
        assert result.returncode == 4 and "runs/performance-42/manifest.json is missing" in result.stderr
    else:
        assert result.returncode == 0, result.stderr  # quantize: its calibration dir exists (below)
    recorded = (tmp_path / "srun").read_text().splitlines()
    expected = [arg.replace("${SLURM_JOB_ID}", "42") for arg in command.argv]
    assert recorded[-len(expected):] == expected
    assert "--container-image=/lustre/images/trtllm-1.2.1.sqsh" in recorded
    assert ("--mpi=pmix" in recorded) == (stage == "run")
    assert (expected[0] == "trtllm-llmapi-launch") == (stage == "run")


@pytest.mark.parametrize(("bench", "source", "directory"), [
    ("llama2-70b-99.9", "open_orca_gpt4_tokenized_llama.calibration_1000.pkl", "calibration-openorca-1000"),
    ("llama3.1-8b", "cnn_dailymail_calibration.json", "calibration-cnn-dailymail-1000"),
])
def test_a_missing_calibration_set_stops_the_quantize_job_before_srun(tmp_path: Path, bench: str, source: str,
                                                                     directory: str) -> None:
    """The quantize stage calibrates on the benchmark's own MLCommons calibration set, by default under work_dir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "srun", 'touch "$RECORD/srun-ran"')
    script = tmp_path / "quantize.sbatch"
    config = seed_config().model_copy(update={"benchmark": bench})
    text = _render("quantize", config, tmp_path)
    assert f"--calib_dataset /models/trtllm/{directory} --calib_size 1024" in text
    script.write_text(text)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "RECORD": str(tmp_path), "SLURM_JOB_ID": "42"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and not (tmp_path / "srun-ran").exists()
    assert (f"calibration dataset (write it with: harness dataset calibration {source} <the host path below>) "
            f"/models/trtllm/{directory} is missing (host path /lustre/models/trtllm/{directory})") in result.stderr


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="expected one of h100-fp8"):
        preset("b200-fp4")


def _trtllm_run(model_path: str, backend: str = "tensorrt", pp: int = 2, replicas: int = 1) -> RunConfig:
    return build_config({"model": {"path": model_path, "tokenizer": "/models/Llama-2-70b-chat-hf"},
                         "backend": {"kind": "trtllm", "backend": backend, "tensor_parallel_size": 8,
                                     "pipeline_parallel_size": pp}, "distributed": {"replicas": replicas}})


def _pipeline_for(config: RunConfig, extra: dict[str, str]) -> Any:
    assert config.backend.kind == "trtllm"
    return pipeline_for(config.backend, config.model, extra)


def test_pipeline_for_a_run_config_uses_its_layout_and_paths() -> None:
    config = _trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2")
    pipe = _pipeline_for(config, {"work_dir": "/lustre/trt"})
    assert pipe.engine_dir == "/lustre/trt/engine_16gpu_tp8_pp2" and pipe.hf_model_dir == "/models/Llama-2-70b-chat-hf"
    assert _flag(quantize_argv(pipe), "--pp_size") == "2"


def test_pipeline_refuses_stages_the_run_would_not_read() -> None:
    with pytest.raises(ConfigError, match=r"model\.path is /lustre/trt/engine_8gpu_tp8_pp1, but the stages write"):
        _pipeline_for(_trtllm_run("/lustre/trt/engine_8gpu_tp8_pp1"), {"work_dir": "/lustre/trt"})
    with pytest.raises(ConfigError, match=r"produce a tensorrt model, but backend\.backend is 'pytorch'"):
        _pipeline_for(_trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2", backend="pytorch"), {"preset": "h100-fp8"})
    with pytest.raises(ConfigError, match=r"need backend\.kind trtllm"):
        build_stage("quantize", build_config({"backend": {"kind": "fake"}}), StageOptions(config_path="/j/c.yaml"))


def test_launch_prefix_only_for_one_multi_gpu_model() -> None:
    one, two = _trtllm_run("/m"), _trtllm_run("/m", pp=1, replicas=2)
    assert one.backend.kind == two.backend.kind == "trtllm"
    assert launch_prefix(one.backend, one.distributed.replicas) == ["trtllm-llmapi-launch"]
    assert launch_prefix(two.backend, two.distributed.replicas) == []
    assert launcher_argv(build_config({"backend": {"kind": "fake"}}), ["python3", "-m", "harness"]) == (
        "python3", "-m", "harness")


def test_pipeline_defaults_come_from_the_run_config() -> None:
    pipe = _pipeline_for(_trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2"), {})
    assert (pipe.work_dir, pipe.quantize.qformat if pipe.quantize else None) == ("/lustre/trt", "fp8")
    hf = _pipeline_for(_trtllm_run("/lustre/trt/llama2-70b-fp8-hf", backend="pytorch", pp=1), {})
    assert hf.build is None and hf.model_path == "/lustre/trt/llama2-70b-fp8-hf"
    int8 = build_config({"model": {"path": "/a/engine_8gpu_tp8_pp1", "tokenizer": "/models/hf"},
                         "backend": {"kind": "trtllm", "backend": "tensorrt", "tensor_parallel_size": 8,
                                     "stages": {"preset": "a100-int8"}}})
    assert _flag(quantize_argv(_pipeline_for(int8, {})), "--qformat") == "int8_sq"
    with pytest.raises(ConfigError, match="unknown key"):
        _pipeline_for(build_config({"model": {"path": "/a/b"}, "backend": {"kind": "trtllm",
                                                                          "stages": {"presets": "x"}}}), {})


def test_nvidia_build_flags_render_and_parse_against_trtllm_builds_options() -> None:
    """The Hopper presets carry NVIDIA's Llama 2 70B build flags; the argv parses with the 1.2.1 option table."""
    from harness.backends.trtllm.options import RUNTIME_PRESETS
    from tests.integration.standins.cli_flags import parse_build

    for name, runtime in (("h100-fp8", "h100"), ("h200-fp8", "h200")):
        argv = build_argv(preset(name))
        args = parse_build(argv[1:])  # raises on a flag or value trtllm-build does not define
        assert (args.max_num_tokens, args.gemm_swiglu_plugin, args.tokens_per_block) == (1536, "fp8", 32)
        assert args.use_paged_context_fmha == "enable"
        # the run's preset may not exceed what the engine was built for (checked at start against config.json)
        assert args.max_batch_size == RUNTIME_PRESETS[runtime]["max_batch_size"]
        assert args.max_num_tokens >= RUNTIME_PRESETS[runtime]["max_num_tokens"]


def test_build_fields_can_be_set_through_backend_stages() -> None:
    from tests.integration.standins.cli_flags import parse_build

    config = _trtllm_run("/lustre/trt/engine_16gpu_tp8_pp2")
    backend = config.backend.model_copy(update={"stages": {"build.multiple_profiles": "true",
                                                           "build.use_fused_mlp": "true",
                                                           "build.tokens_per_block": "64"}})
    pipe = pipeline_for(backend, config.model, {"work_dir": "/lustre/trt"})
    args = parse_build(build_argv(pipe)[1:])
    assert (args.multiple_profiles, args.use_fused_mlp, args.tokens_per_block) == ("enable", "enable", 64)
    assert args.max_num_tokens == 1536  # the rest of the preset's build stage stays
    bad = backend.model_copy(update={"stages": {"build.multiple_profile": "true"}})
    with pytest.raises(ConfigError, match="build has no field"):
        pipeline_for(bad, config.model, {"work_dir": "/lustre/trt"})
    wrong = backend.model_copy(update={"stages": {"build.tokens_per_block": "many"}})
    with pytest.raises(ConfigError, match="tokens_per_block"):
        pipeline_for(wrong, config.model, {"work_dir": "/lustre/trt"})
    with pytest.raises(ConfigError, match="has no build stage"):
        pipeline_for(backend.model_copy(update={"backend": "pytorch", "stages": {"build.use_fused_mlp": "true"}}),
                     config.model.model_copy(update={"path": "/lustre/trt/llama2-70b-fp8-hf"}), {})


def test_convert_argv_parses_against_convert_checkpoints_options() -> None:
    from tests.integration.standins.cli_flags import parse_convert

    argv = convert_argv(preset("a100-fp16"))
    args = parse_convert(argv[2:])
    assert (args.tp_size, args.pp_size, args.dtype) == (8, 2, "float16")
    weight_only = preset("a100-fp16", convert={"dtype": "float16", "weight_only_precision": "int8"})
    assert parse_convert(convert_argv(weight_only)[2:]).use_weight_only
