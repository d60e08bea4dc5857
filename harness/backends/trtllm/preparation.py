"""TensorRT-LLM model preparation as typed stages: quantize -> (convert) -> build, presets, argv and launch lines.

Two flows:
- ``engine`` (the seed's, TensorRT-LLM <= 1.2): examples/quantization/quantize.py writes a TensorRT-LLM
  checkpoint, ``trtllm-build`` turns it into one engine per rank; run with backend.backend: tensorrt.
  ``convert`` (examples/models/core/llama/convert_checkpoint.py --model_dir; examples/llama/ before 0.19)
  replaces quantize only for unquantized or weight-only checkpoints: never both, since quantize.py already
  writes the checkpoint.
- ``hf`` (TensorRT-LLM >= 1.0 default): the same quantize.py with ``--export_format hf`` writes an FP8 HF
  checkpoint that backend.backend: pytorch loads directly; there is no convert or build step. (ModelOpt's
  llm_ptq/hf_ptq.py is not in the release image, and older ModelOpt examples export TensorRT-LLM format
  by default.)
Calibration reads ``--calib_dataset``: a local directory that datasets.load_dataset opens, split "train",
column "text" (tensorrt_llm/quantization/quantize_by_modelopt.py, get_calib_dataloader); quantize.py's
default, cnn_dailymail, is downloaded and is not MLPerf's calibration set. `harness dataset calibration`
(harness.slurm.calibration) writes that directory from the benchmark's MLCommons calibration file: the OpenOrca
pickle for Llama 2 70B, cnn_dailymail_calibration.json for Llama 3.1 8B; its default location is
<work_dir>/<the benchmark's calibration_dir>.
Directory names derive from TP and PP in one place, so every stage agrees on them (the seed's README read
``..._tp8`` after writing ``..._tp8_pp2``).
Nothing here runs a command: it returns argv lists; harness.slurm.trtllm composes them into Slurm stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.backends.trtllm.options import TrtllmOptions
from harness.benchmarks.registry import DEFAULT_BENCHMARK, benchmark_facts
from harness.errors import ConfigError
from harness.settings import ModelConfig

__all__ = ["PREPARATION_STAGES", "PRESETS", "STAGE_OPTION_KEYS", "BuildStage", "ConvertStage", "PreparationCommand",
           "QuantizeStage", "TrtllmPipeline", "build_argv", "check_launchable", "check_run_matches", "convert_argv",
           "launch_prefix", "pipeline_for", "preset", "quantize_argv", "stage_commands"]

PREPARATION_STAGES = ("quantize", "convert", "build")
CALIBRATION_DIR = "calibration-openorca-1000"  # Llama 2 70B's default name under work_dir (harness.slurm.calibration)


class _Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QuantizeStage(_Stage):
    """Post-training quantization with ModelOpt (calibration needs the GPUs of one node)."""

    flow: Literal["engine", "hf"] = Field("engine", description="engine: quantize.py -> TRT-LLM checkpoint; "
                                                                 "hf: quantize.py --export_format hf -> HF checkpoint")
    qformat: Literal["fp8", "int8_sq", "int8_wo", "int4_awq"] = "fp8"
    kv_cache_dtype: Literal["fp8", "int8"] | None = "fp8"
    dtype: Literal["float16", "bfloat16"] = "float16"
    calib_size: int = Field(1024, ge=1, description="NVIDIA's MLPerf setting: all of the 1,000-sample calibration set")

    @model_validator(mode="after")
    def _formats_fit_flow(self) -> QuantizeStage:
        if self.flow == "hf" and (self.qformat != "fp8" or self.kv_cache_dtype == "int8"):
            raise ValueError("the hf flow (PyTorch backend) is used here for FP8 only; use flow: engine for INT8")
        return self


class ConvertStage(_Stage):
    """HF -> TensorRT-LLM checkpoint without calibration (unquantized or weight-only)."""

    dtype: Literal["float16", "bfloat16"] = "float16"
    weight_only_precision: Literal["int8", "int4"] | None = None


class BuildStage(_Stage):
    """trtllm-build limits and plugins; the engine is fixed to the checkpoint's TP x PP."""

    max_batch_size: int = Field(512, ge=1)
    max_input_len: int = Field(1024, ge=1, description="OpenOrca prompts are cut at 1024 tokens")
    max_seq_len: int = Field(2048, ge=2, description="input + max_new_tokens (1024)")
    max_num_tokens: int = Field(8192, ge=1)
    max_beam_width: int = Field(1, ge=1, description="> 1 only for open-division beam search")
    gemm_plugin: Literal["auto", "float16", "bfloat16", "fp8"] = "auto"
    use_paged_context_fmha: bool = True
    use_fp8_context_fmha: bool = False
    multiple_profiles: bool = Field(False, description="--multiple_profiles enable: TensorRT profiles per shape range")
    use_fused_mlp: bool = Field(False, description="--use_fused_mlp enable: fused gate/up GEMM")
    gemm_swiglu_plugin: Literal["fp8"] | None = Field(None, description="--gemm_swiglu_plugin fp8 (FP8 SwiGLU GEMM)")
    tokens_per_block: int | None = Field(None, ge=1, description="--tokens_per_block: paged KV-cache block size")
    workers: int | None = Field(None, ge=1, description="parallel rank builds; default min(TP x PP, 8)")


class TrtllmPipeline(_Stage):
    """The stages for one model layout. Paths are as seen inside the job (container paths)."""

    hf_model_dir: str = "/models/Llama-2-70b-chat-hf"
    work_dir: str = "/models/trtllm"
    trtllm_examples: str = Field("/app/tensorrt_llm/examples", description="TensorRT-LLM examples/ of the release")
    calib_dataset: str = Field("", description="quantize --calib_dataset: the directory `harness dataset "
                                               "calibration` writes; empty = <work_dir>/<calibration_name>")
    calibration_name: str = Field(CALIBRATION_DIR, description="the default calibration directory's name under "
                                                               "work_dir: the benchmark's (facts.calibration_dir)")
    tensor_parallel_size: int = Field(8, ge=1)
    pipeline_parallel_size: int = Field(2, ge=1)
    quantize: QuantizeStage | None = QuantizeStage()
    convert: ConvertStage | None = None
    build: BuildStage | None = BuildStage()

    @model_validator(mode="after")
    def _stages_fit_together(self) -> TrtllmPipeline:
        if self.quantize is not None and self.convert is not None:
            raise ValueError("quantize and convert both write the TensorRT-LLM checkpoint; quantize.py replaces "
                             "convert_checkpoint.py (keep one: quantize for FP8/INT8, convert for FP16/weight-only)")
        if self.quantize is not None and self.quantize.flow == "hf" and self.build is not None:
            raise ValueError("the hf flow runs on the PyTorch backend, which has no build step; set build: null")
        if self.quantize is None and self.convert is None and self.build is not None:
            raise ValueError("build needs a checkpoint: enable quantize or convert")
        return self

    @property
    def world_size(self) -> int:
        """Ranks (GPUs) one model instance spans."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    @property
    def layout(self) -> str:
        """'16gpu_tp8_pp2': the suffix every directory of this pipeline carries."""
        return f"{self.world_size}gpu_tp{self.tensor_parallel_size}_pp{self.pipeline_parallel_size}"

    @property
    def calibration_dir(self) -> str:
        """The local calibration dataset quantize.py reads (never a download)."""
        return self.calib_dataset or f"{self.work_dir}/{self.calibration_name}"

    @property
    def checkpoint_dir(self) -> str:
        """TensorRT-LLM checkpoint written by quantize (engine flow) or convert."""
        return f"{self.work_dir}/tllm_checkpoint_{self.layout}"

    @property
    def engine_dir(self) -> str:
        """Engine directory written by trtllm-build (model.path for backend.backend: tensorrt)."""
        return f"{self.work_dir}/engine_{self.layout}"

    @property
    def hf_quantized_dir(self) -> str:
        """FP8 HF checkpoint written by the hf flow (model.path for backend.backend: pytorch); any TP/PP."""
        assert self.quantize is not None
        return f"{self.work_dir}/llama2-70b-{self.quantize.qformat}-hf"

    @property
    def model_path(self) -> str:
        """What the run's model.path must be after these stages."""
        if self.quantize is not None and self.quantize.flow == "hf":
            return self.hf_quantized_dir
        return self.engine_dir if self.build is not None else self.hf_model_dir

    @property
    def runtime_backend(self) -> Literal["pytorch", "tensorrt"]:
        """backend.backend for the run."""
        return "tensorrt" if self.build is not None else "pytorch"


# NVIDIA's MLPerf Llama 2 70B build flags (trtllm_build_flags of the closed Hopper configs; docs/tensorrt-llm.md
# "Presets"): max_num_tokens 1536, gemm_swiglu_plugin fp8, paged context FMHA, 32 tokens per KV block; the batch
# size is the runtime preset's (harness.backends.trtllm.options.RUNTIME_PRESETS), since the run may not exceed it.
_FP8_BUILD = BuildStage(gemm_plugin="auto", use_fp8_context_fmha=True, max_num_tokens=1536, gemm_swiglu_plugin="fp8",
                        use_paged_context_fmha=True, tokens_per_block=32)
PRESETS: dict[str, TrtllmPipeline] = {
    "h100-fp8": TrtllmPipeline(quantize=QuantizeStage(qformat="fp8", kv_cache_dtype="fp8"),
                               build=_FP8_BUILD.model_copy(update={"max_batch_size": 896})),
    "h200-fp8": TrtllmPipeline(quantize=QuantizeStage(qformat="fp8", kv_cache_dtype="fp8"),
                               build=_FP8_BUILD.model_copy(update={"max_batch_size": 2048})),
    "h100-fp8-pytorch": TrtllmPipeline(quantize=QuantizeStage(flow="hf", qformat="fp8", kv_cache_dtype="fp8"),
                                       build=None),
    "a100-int8": TrtllmPipeline(quantize=QuantizeStage(qformat="int8_sq", kv_cache_dtype="int8"),
                                build=BuildStage(gemm_plugin="float16")),
    "a100-fp16": TrtllmPipeline(quantize=None, convert=ConvertStage(), build=BuildStage(gemm_plugin="float16")),
}


def preset(name: str, **changes: object) -> TrtllmPipeline:
    """A preset with top-level fields replaced (e.g. work_dir, tensor_parallel_size), re-validated."""
    if name not in PRESETS:
        raise ConfigError(f"TensorRT-LLM preset {name!r} does not exist; expected one of {', '.join(PRESETS)}")
    data = PRESETS[name].model_dump()
    data.update(changes)
    try:
        return TrtllmPipeline.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'stages'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in err.errors())
        raise ConfigError(f"preset {name} with {sorted(changes)} changed: {problems}",
                          hint="see docs/tensorrt-llm.md for which stages fit together") from None


def quantize_argv(pipe: TrtllmPipeline) -> list[str]:
    """examples/quantization/quantize.py: a TensorRT-LLM checkpoint per rank (engine flow) or, with
    --export_format hf, an HF checkpoint (hf flow); calibration from the local MLPerf set."""
    stage = pipe.quantize
    if stage is None:
        raise ConfigError("this pipeline has no quantize stage")
    argv = ["python3", f"{pipe.trtllm_examples}/quantization/quantize.py", "--model_dir", pipe.hf_model_dir,
            "--dtype", stage.dtype, "--qformat", stage.qformat]
    if stage.kv_cache_dtype is not None:
        argv += ["--kv_cache_dtype", stage.kv_cache_dtype]
    argv += ["--calib_dataset", pipe.calibration_dir, "--calib_size", str(stage.calib_size)]
    if stage.flow == "hf":
        return [*argv, "--export_format", "hf", "--output_dir", pipe.hf_quantized_dir]
    return [*argv, "--tp_size", str(pipe.tensor_parallel_size), "--pp_size", str(pipe.pipeline_parallel_size),
            "--output_dir", pipe.checkpoint_dir]


def convert_argv(pipe: TrtllmPipeline) -> list[str]:
    """convert_checkpoint.py with --model_dir (HF weights; --meta_ckpt_dir is for Meta's original format)."""
    stage = pipe.convert
    if stage is None:
        raise ConfigError("this pipeline has no convert stage (quantize.py already wrote the checkpoint)")
    argv = ["python3", f"{pipe.trtllm_examples}/models/core/llama/convert_checkpoint.py", "--model_dir",
            pipe.hf_model_dir,
            "--output_dir", pipe.checkpoint_dir, "--dtype", stage.dtype,
            "--tp_size", str(pipe.tensor_parallel_size), "--pp_size", str(pipe.pipeline_parallel_size)]
    if stage.weight_only_precision is not None:
        argv += ["--use_weight_only", "--weight_only_precision", stage.weight_only_precision]
    return argv


def build_argv(pipe: TrtllmPipeline) -> list[str]:
    """trtllm-build reading exactly the checkpoint directory the previous stage wrote."""
    stage = pipe.build
    if stage is None:
        raise ConfigError("this pipeline has no build stage (the PyTorch backend loads the checkpoint directly)")
    argv = ["trtllm-build", "--checkpoint_dir", pipe.checkpoint_dir, "--output_dir", pipe.engine_dir,
            "--max_batch_size", str(stage.max_batch_size), "--max_input_len", str(stage.max_input_len),
            "--max_seq_len", str(stage.max_seq_len), "--max_num_tokens", str(stage.max_num_tokens),
            "--max_beam_width", str(stage.max_beam_width), "--gemm_plugin", stage.gemm_plugin,
            "--workers", str(stage.workers or min(pipe.world_size, 8))]
    if stage.use_paged_context_fmha:
        argv += ["--use_paged_context_fmha", "enable"]
    if stage.use_fp8_context_fmha:
        argv += ["--use_fp8_context_fmha", "enable"]
    for flag, on in (("--multiple_profiles", stage.multiple_profiles), ("--use_fused_mlp", stage.use_fused_mlp)):
        if on:
            argv += [flag, "enable"]
    if stage.gemm_swiglu_plugin is not None:
        argv += ["--gemm_swiglu_plugin", stage.gemm_swiglu_plugin]
    if stage.tokens_per_block is not None:
        argv += ["--tokens_per_block", str(stage.tokens_per_block)]
    return argv


@dataclass(frozen=True)
class PreparationCommand:
    """One preparation stage: its name, argv, and a one-line description (harness.slurm.trtllm wraps it)."""

    name: str
    argv: list[str]
    description: str


def check_launchable(argv: list[str]) -> None:
    """trtllm-llmapi-launch re-splits its command on whitespace (``$task_with_command``): refuse such args."""
    bad = [arg for arg in argv if not arg or any(c.isspace() or c in "*?[]$`\"'\\" for c in arg)]
    if bad:
        raise ConfigError(f"argument {bad[0]!r} cannot pass through trtllm-llmapi-launch, which re-splits the "
                          "command on spaces and expands globs", hint="use paths without spaces or special characters")


def stage_commands(pipe: TrtllmPipeline) -> list[PreparationCommand]:
    """The preparation stages of a pipeline, in order (each on one node)."""
    commands: list[PreparationCommand] = []
    if pipe.quantize is not None:
        what = f"{pipe.quantize.qformat} quantization ({pipe.quantize.flow} flow), {pipe.quantize.calib_size} samples"
        commands.append(PreparationCommand("quantize", quantize_argv(pipe), what))
    if pipe.convert is not None:
        commands.append(PreparationCommand("convert", convert_argv(pipe), "HF -> TensorRT-LLM checkpoint"))
    if pipe.build is not None:
        commands.append(PreparationCommand("build", build_argv(pipe), f"trtllm-build, {pipe.layout} engines"))
    return commands


STAGE_OPTION_KEYS = ("preset", "work_dir", "hf_model_dir", "trtllm_examples", "calib_dataset")
STAGE_FIELD_PREFIXES = ("build.", "quantize.", "convert.")  # e.g. build.multiple_profiles: "true"


def _stage_field_changes(name: str, merged: Mapping[str, str]) -> dict[str, object]:
    """backend.stages 'build.<field>' (quantize., convert.) entries merged over the preset's stage of that name."""
    changes: dict[str, object] = {}
    for prefix in STAGE_FIELD_PREFIXES:
        fields = {key.removeprefix(prefix): value for key, value in merged.items() if key.startswith(prefix)}
        if not fields:
            continue
        stage_name = prefix.rstrip(".")
        base = getattr(PRESETS[name], stage_name) if name in PRESETS else None
        if base is None:
            raise ConfigError(f"backend.stages sets {', '.join(prefix + f for f in fields)}, but preset {name} has "
                              f"no {stage_name} stage", hint="pick a preset that has it (docs/tensorrt-llm.md)")
        unknown = sorted(set(fields) - set(type(base).model_fields))
        if unknown:
            raise ConfigError(f"backend.stages: {stage_name} has no field(s) {', '.join(unknown)}",
                              hint=f"fields: {', '.join(type(base).model_fields)}")
        changes[stage_name] = {**base.model_dump(), **fields}
    return changes


def pipeline_for(backend: TrtllmOptions, model: ModelConfig, options: Mapping[str, str],
                 benchmark: str = DEFAULT_BENCHMARK) -> TrtllmPipeline:
    """The stages that prepare what a trtllm run config reads: preset + the run's TP/PP and model paths, and the
    benchmark's calibration set (<work_dir>/<its calibration_dir> unless calib_dataset names one).

    Options come from backend.stages, then ``options`` (the Slurm renderer's extras): ``preset`` (default
    h100-fp8, or h100-fp8-pytorch for backend.backend pytorch), ``work_dir`` (default: model.path's parent),
    ``hf_model_dir`` (default model.tokenizer), ``trtllm_examples``, ``calib_dataset``.
    """
    merged = {**backend.stages, **options}
    unknown = sorted(k for k in backend.stages if k not in STAGE_OPTION_KEYS and not k.startswith(STAGE_FIELD_PREFIXES))
    if unknown:
        raise ConfigError(f"backend.stages has unknown key(s) {', '.join(unknown)}",
                          hint=f"allowed: {', '.join(STAGE_OPTION_KEYS)}, and build.<field>, quantize.<field>, "
                               "convert.<field>")
    changes: dict[str, object] = {"tensor_parallel_size": backend.tensor_parallel_size,
                                  "pipeline_parallel_size": backend.pipeline_parallel_size,
                                  "calibration_name": benchmark_facts(benchmark).calibration_dir or CALIBRATION_DIR}
    if model.tokenizer:
        changes["hf_model_dir"] = model.tokenizer
    if model.path:
        changes["work_dir"] = str(PurePosixPath(model.path.rstrip("/")).parent)
    changes.update({key: merged[key] for key in STAGE_OPTION_KEYS[1:] if merged.get(key)})
    default = "h100-fp8" if backend.backend == "tensorrt" else "h100-fp8-pytorch"
    name = merged.get("preset") or default
    changes.update(_stage_field_changes(name, merged))
    pipe = preset(name, **changes)
    check_run_matches(pipe, backend, model)
    return pipe


def check_run_matches(pipe: TrtllmPipeline, backend: TrtllmOptions, model: ModelConfig) -> None:
    """Refuse stages whose output is not what the run reads (the seed built ..._tp8, then ran ..._tp8_pp2)."""
    if backend.backend != pipe.runtime_backend:
        raise ConfigError(f"the stages produce a {pipe.runtime_backend} model, but backend.backend is "
                          f"{backend.backend!r}", hint=f"set backend.backend: {pipe.runtime_backend} or pick "
                                                       "another preset")
    if model.path is not None and model.path.rstrip("/") != pipe.model_path:
        raise ConfigError(f"model.path is {model.path}, but the stages write {pipe.model_path}",
                          hint=f"set model.path: {pipe.model_path} (or work_dir to {model.path}'s parent)")


def launch_prefix(backend: TrtllmOptions, replicas: int) -> list[str]:
    """['trtllm-llmapi-launch'] when the run serves one TP x PP > 1 model across srun ranks, else []."""
    if backend.gpus_per_replica > 1 and replicas == 1:
        return ["trtllm-llmapi-launch"]
    return []
