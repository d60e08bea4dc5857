"""Pure rules of the TensorRT-LLM backend: versions, GPU layout, SamplingParams/LLM arguments, engine dirs.

Nothing here imports tensorrt_llm: harness.backends.trtllm turns these plain values into TensorRT-LLM
objects, so every rule is tested without the package. The API names follow TensorRT-LLM 1.x
(tensorrt_llm/sampling_params.py, tensorrt_llm/llmapi/llm_args.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.sampling import SamplingSpec
from harness.backends.trtllm.options import SCHEDULER_POLICIES, TrtllmOptions
from harness.errors import ConfigError, EnvironmentProblem, PreflightError

__all__ = ["ENGINE_MAX_VERSION", "INSTALL_HINT", "MIN_VERSION", "TESTED_VERSION", "GpuAllocation", "allocated_gpus",
           "check_engine_dir", "check_gpu_layout", "check_limits", "check_request_fits", "check_version",
           "engine_record", "final_tokens", "harness_world", "kv_cache_kwargs", "llm_kwargs", "parse_version",
           "runtime_kwargs", "sampling_kwargs"]

MIN_VERSION = (1, 0)
ENGINE_MAX_VERSION = (1, 2)  # the trtllm-build engine flow exists up to 1.2.x; newer main removed it
TESTED_VERSION = "1.2.1"
INSTALL_HINT = (
    "run inside an NVIDIA TensorRT-LLM container (nvcr.io/nvidia/tensorrt-llm/release:1.2.1) or "
    "`pip install tensorrt-llm==1.2.1 --extra-index-url https://pypi.nvidia.com` on a CUDA host"
)


def parse_version(text: str) -> tuple[int, int]:
    """'1.2.0rc3' -> (1, 2). Unparseable -> EnvironmentProblem."""
    match = re.match(r"\s*(\d+)\.(\d+)", text)
    if match is None:
        raise EnvironmentProblem(f"tensorrt_llm.__version__ is {text!r}; expected a version like 1.2.1",
                                 hint=INSTALL_HINT)
    return int(match.group(1)), int(match.group(2))


def check_version(text: str, backend: str) -> list[str]:
    """Refuse TensorRT-LLM < 1.0, and engines on > 1.2; return notes (e.g. 'newer than tested')."""
    version = parse_version(text)
    if version < MIN_VERSION:
        raise EnvironmentProblem(
            f"tensorrt_llm {text} is too old; backend trtllm needs TensorRT-LLM >= 1.0 (LLM API, PyTorch backend)",
            hint=INSTALL_HINT)
    if backend == "tensorrt" and version > ENGINE_MAX_VERSION:
        raise EnvironmentProblem(
            f"tensorrt_llm {text} has no TensorRT engine backend (removed after 1.2); backend.backend is 'tensorrt'",
            hint="use backend.backend: pytorch with an HF/ModelOpt FP8 checkpoint, or TensorRT-LLM 1.2.x for engines")
    if version > parse_version(TESTED_VERSION):
        return [f"tensorrt_llm {text} is newer than the release this adapter was written against ({TESTED_VERSION})"]
    return []


@dataclass(frozen=True)
class GpuAllocation:
    """How many GPUs (or MPI ranks holding one GPU each) this process can use, and where that came from."""

    count: int
    source: str


def _visible_devices(env: Mapping[str, str]) -> int | None:
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return len([d for d in value.split(",") if d.strip() and d.strip() != "-1"])


def _int(env: Mapping[str, str], *names: str) -> tuple[int, str] | None:
    for name in names:
        if env.get(name, "").isdigit():
            return int(env[name]), name
    return None


def harness_world(env: Mapping[str, str]) -> int:
    """Processes in the harness's own MPI/Slurm launch (each serves one replica), 1 when not launched."""
    found = _int(env, "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS", "WORLD_SIZE")
    return found[0] if found else 1


def allocated_gpus(env: Mapping[str, str]) -> GpuAllocation | None:
    """GPUs this process's model may span: the trtllm-llmapi-launch world, else its share of the node's GPUs.

    trtllm-llmapi-launch starts the user command with every SLURM_/OMPI_/PMI_ variable removed and exports
    ``tllm_mpi_size`` (the MPI world) and ``TLLM_SPAWN_PROXY_PROCESS=1`` (tensorrt_llm/llmapi/trtllm-llmapi-launch),
    so inside it the world size is the only trustworthy count. Otherwise each harness rank is one replica and
    owns SLURM_GPUS_ON_NODE / tasks-per-node GPUs, or the devices in CUDA_VISIBLE_DEVICES.
    """
    if env.get("TLLM_SPAWN_PROXY_PROCESS") == "1" and env.get("tllm_mpi_size", "").isdigit():
        return GpuAllocation(int(env["tllm_mpi_size"]), "trtllm-llmapi-launch world (tllm_mpi_size)")
    visible = _visible_devices(env)
    node_gpus = _int(env, "SLURM_GPUS_ON_NODE")
    if node_gpus is None:
        return None if visible is None else GpuAllocation(visible, "CUDA_VISIBLE_DEVICES")
    per_node = _int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")
    if per_node is None or per_node[0] <= 1:
        return GpuAllocation(node_gpus[0], "SLURM_GPUS_ON_NODE")
    return GpuAllocation(node_gpus[0] // per_node[0],
                         f"SLURM_GPUS_ON_NODE {node_gpus[0]} / {per_node[1]} {per_node[0]} ranks per node")


SERVE_HINT = ("serve each replica with trtllm-serve in its own srun step and run the harness as their client: "
              "`harness slurm render serve` (docs/tensorrt-llm.md, 'Replicas')")


def check_gpu_layout(options: TrtllmOptions, replicas: int, env: Mapping[str, str] | None = None) -> str:
    """Raise PreflightError when the GPUs this process may use differ from TP x PP; return a description.

    Replicas of trtllm are refused here: harness ranks in one MPI world cannot each start an LLM (its workers
    come from MPI_Comm_spawn), and in-process replicas would share GPUs. Replicas are trtllm-serve servers
    (harness.slurm.serve) driven by the endpoint backend.
    """
    env = os.environ if env is None else env
    tp, pp = options.tensor_parallel_size, options.pipeline_parallel_size
    need, world = tp * pp, harness_world(env)
    launched = env.get("TLLM_SPAWN_PROXY_PROCESS") == "1"
    if replicas > 1 or (world > 1 and not launched):
        if launched:
            why = "trtllm-llmapi-launch serves exactly one TP x PP model"
        elif world > 1:
            why = (f"over {world} harness ranks each rank's LLM would spawn its own MPI workers (MPI_Comm_spawn), "
                   "which fails inside an srun step (NVIDIA/TensorRT-LLM#5495, ai-dynamo/dynamo#808)")
        else:
            why = f"in one process the trtllm replicas would share the same {need} GPUs"
        hint = SERVE_HINT if replicas > 1 else (f"one model over {need} GPUs runs under the launcher: srun --mpi=pmix "
                                                 f"--ntasks={need} trtllm-llmapi-launch harness run ...; for "
                                                 f"replicas, {SERVE_HINT}")
        raise PreflightError(f"{replicas} replica(s) on {world} harness rank(s) with backend.kind trtllm: {why}",
                             hint=hint)
    found = allocated_gpus(env)
    layout = f"TP {tp} x PP {pp}" + (f", one of {world} replica ranks" if world > 1 else "")
    if found is None:
        return f"{layout}; GPU allocation unknown (no launcher, SLURM_GPUS_ON_NODE or CUDA_VISIBLE_DEVICES)"
    if found.count != need:
        raise PreflightError(
            f"tensor_parallel ({tp}) x pipeline_parallel ({pp}) = {need} GPUs per model, but this process has "
            f"{found.count} ({found.source})", hint=_layout_hint(tp, pp, world))
    return f"{layout}; {found.count} GPUs from {found.source}"


def _layout_hint(tp: int, pp: int, world: int) -> str:
    if world > 1:
        return (f"a model spanning {tp * pp} GPUs needs trtllm-llmapi-launch (srun --mpi=pmix --ntasks={tp * pp} "
                f"trtllm-llmapi-launch harness run ...), or one rank per {tp * pp} GPUs for replicas")
    return (f"launch {tp * pp} ranks: srun --mpi=pmix --ntasks={tp * pp} trtllm-llmapi-launch harness run ..., "
            "or change backend.tensor_parallel_size/pipeline_parallel_size (or set backend.gpu_check: false)")


def sampling_kwargs(spec: SamplingSpec) -> dict[str, Any]:
    """SamplingParams(...) keyword arguments for a SamplingSpec (token ids only: no detokenization)."""
    kwargs: dict[str, Any] = {
        "end_id": spec.eos_token_id,
        "pad_id": spec.pad_token_id,
        "max_tokens": spec.max_new_tokens,
        "min_tokens": spec.min_new_tokens,
        "detokenize": False,
    }
    if spec.stop_token_ids:  # the checkpoint's other EOS ids (SamplingParams.stop_token_ids: list[int])
        kwargs["stop_token_ids"] = list(spec.stop_token_ids)
    if spec.num_beams > 1:
        kwargs.update(use_beam_search=True, n=1, best_of=spec.num_beams, length_penalty=spec.length_penalty,
                      early_stopping=int(spec.early_stopping))
    if spec.greedy and spec.num_beams == 1:
        kwargs["top_k"] = 1  # SamplingParams._greedy_decoding: top_k in (None, 1) and top_p in (None, 0)
    elif not spec.greedy:
        kwargs.update(temperature=spec.temperature, top_k=spec.top_k or None, top_p=spec.top_p)
    if spec.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = spec.repetition_penalty
    if spec.presence_penalty:
        kwargs["presence_penalty"] = spec.presence_penalty
    return kwargs


def kv_cache_kwargs(options: TrtllmOptions) -> dict[str, Any]:
    """KvCacheConfig(...) keyword arguments (dtype only for the PyTorch backend; engines ignore it)."""
    kwargs: dict[str, Any] = {
        "free_gpu_memory_fraction": options.kv_cache_free_gpu_memory_fraction,
        "enable_block_reuse": options.enable_block_reuse,
    }
    if options.backend == "pytorch":
        kwargs["dtype"] = options.kv_cache_dtype
    return kwargs


def engine_record(options: TrtllmOptions, version: str, model: str) -> dict[str, Any]:
    """The manifest's `details.engines` row of an in-process LLM API instance: the KV-cache block reuse across
    requests (cross-query prefix caching) it ran with, from the KvCacheConfig kv_cache_kwargs builds."""
    reuse = bool(kv_cache_kwargs(options)["enable_block_reuse"])
    return {"url": "in-process", "engine": "trtllm", "version": version, "model": model, "model_root": model,
            "prefix_caching": "on" if reuse else "off",
            "prefix_caching_source": "KvCacheConfig(enable_block_reuse=...) from backend.enable_block_reuse",
            "settings": {"enable_block_reuse": str(reuse), "backend": options.backend}}


def runtime_kwargs(options: TrtllmOptions) -> dict[str, Any]:
    """NVIDIA's runtime settings as LLM arguments (llm_args.py: scheduler_config: SchedulerConfig,
    cuda_graph_config: CudaGraphConfig, disable_overlap_scheduler), given as dicts that pydantic validates."""
    kwargs: dict[str, Any] = {}
    if options.capacity_scheduler_policy is not None:
        policy = SCHEDULER_POLICIES[options.capacity_scheduler_policy]
        kwargs["scheduler_config"] = {"capacity_scheduler_policy": policy}
    graphs: dict[str, Any] = {}
    if options.cuda_graph_batch_sizes is not None:
        graphs["batch_sizes"] = list(options.cuda_graph_batch_sizes)
    if options.cuda_graph_padding is not None:
        graphs["enable_padding"] = options.cuda_graph_padding
    if graphs:
        kwargs["cuda_graph_config"] = graphs
    if options.disable_overlap_scheduler is not None:
        kwargs["disable_overlap_scheduler"] = options.disable_overlap_scheduler
    return kwargs


def llm_kwargs(options: TrtllmOptions, model: str, tokenizer: str | None, max_beam_width: int = 1) -> dict[str, Any]:
    """LLM(...) keyword arguments other than kv_cache_config (built by the adapter from kv_cache_kwargs).
    max_beam_width > 1 is passed (LlmArgs.max_beam_width defaults to 1, and beam requests above it fail)."""
    kwargs: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": options.tensor_parallel_size,
        "pipeline_parallel_size": options.pipeline_parallel_size,
        "skip_tokenizer_init": True,  # prompts are token ids and outputs stay token ids
    }
    if tokenizer is not None:
        kwargs["tokenizer"] = tokenizer
    for name in ("max_batch_size", "max_num_tokens", "max_seq_len"):
        value = getattr(options, name)
        if value is not None:
            kwargs[name] = value
    if options.backend == "pytorch" and options.enable_chunked_prefill:
        kwargs["enable_chunked_prefill"] = True
    if max_beam_width > 1:
        kwargs["max_beam_width"] = max_beam_width
    kwargs.update(runtime_kwargs(options))
    clash = sorted(set(options.llm_args) & (set(kwargs) | {"kv_cache_config"}))
    if clash:
        raise ConfigError(f"backend.llm_args repeats {', '.join(clash)}, which the trtllm backend already sets",
                          hint="set those through their own backend.* keys")
    kwargs.update(options.llm_args)
    return kwargs


ENGINE_LIMITS = ("max_batch_size", "max_input_len", "max_seq_len", "max_num_tokens", "max_beam_width")


def check_engine_dir(path: str, tp: int, pp: int) -> dict[str, int]:
    """An engine dir from trtllm-build: config.json whose mapping matches TP x PP, one rank*.engine per rank.
    Returns the build limits its build_config records (trtllm-build writes them there), those present."""
    directory = Path(path)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"model.path {path} has no config.json; expected a trtllm-build output directory",
                          hint="point model.path at trtllm-build --output_dir, or use backend.backend: pytorch")
    try:
        mapping = json.loads(config_file.read_text())["pretrained_config"]["mapping"]
        built = (int(mapping.get("tp_size", 1)), int(mapping.get("pp_size", 1)))
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{config_file} is not a trtllm-build engine config (no pretrained_config.mapping)",
                          hint="rebuild the engine with trtllm-build") from err
    if built != (tp, pp):
        raise ConfigError(
            f"engine {path} was built for TP {built[0]} x PP {built[1]}, but the config asks for TP {tp} x PP {pp}",
            hint="set backend.tensor_parallel_size/pipeline_parallel_size to the engine's, or rebuild the engine")
    missing = [f"rank{r}.engine" for r in range(tp * pp) if not (directory / f"rank{r}.engine").is_file()]
    if missing:
        raise ConfigError(f"engine {path} lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}",
                          hint="the engine build did not finish; rerun the build stage")
    build = json.loads(config_file.read_text()).get("build_config") or {}
    return {name: int(build[name]) for name in ENGINE_LIMITS if isinstance(build.get(name), int)}


def check_limits(options: TrtllmOptions, built: Mapping[str, int], num_beams: int) -> None:
    """Refuse runtime limits above the engine's build limits, and beams the engine (or LLM) was not built for."""
    for name in ("max_batch_size", "max_num_tokens", "max_seq_len"):
        asked = getattr(options, name)
        if asked is not None and name in built and asked > built[name]:
            raise ConfigError(f"backend.{name} is {asked}, above the engine's build limit {built[name]}",
                              hint=f"lower backend.{name}, or rebuild with trtllm-build --{name} {asked}")
    if num_beams > built.get("max_beam_width", 1 if built else num_beams):
        raise ConfigError(f"generation.num_beams is {num_beams}, but the engine was built with max_beam_width "
                          f"{built.get('max_beam_width', 1)}", hint=f"rebuild with --max_beam_width {num_beams}")


def check_request_fits(longest_prompt: int, max_new_tokens: int, max_seq_len: int | None) -> None:
    """prompt + max new tokens must fit max_seq_len (TensorRT-LLM rejects each request that does not)."""
    if max_seq_len is not None and longest_prompt + max_new_tokens > max_seq_len:
        raise ConfigError(f"the longest prompt ({longest_prompt} tokens) + generation.max_new_tokens "
                          f"({max_new_tokens}) exceeds max_seq_len {max_seq_len}",
                          hint="raise max_seq_len (rebuild the engine for backend tensorrt) or lower max_new_tokens")


def final_tokens(token_ids: Sequence[int], finish_reason: str | None, eos_token_id: int,
                 stop_token_ids: Sequence[int] = ()) -> list[int]:
    """Generated ids as the reference reports them: a sequence stopped by end_id ends with that EOS.

    TensorRT-LLM reports finish_reason 'stop' for end_id (and for a stop_token_ids match); the MLCommons reference
    output (HF generate) keeps the EOS, and n_tokens counts it, so it is appended when TensorRT-LLM left it out
    (a sequence that already ends with one of the stop ids keeps that one).
    """
    tokens = [int(t) for t in token_ids]
    stops = (eos_token_id, *stop_token_ids)
    if finish_reason == "stop" and (not tokens or tokens[-1] not in stops) and eos_token_id not in tokens:
        tokens.append(eos_token_id)
    return tokens
