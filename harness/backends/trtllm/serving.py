"""trtllm-serve for one replica: its argv and its --extra_llm_api_options YAML, from the trtllm backend options.

Flags follow `tensorrt_llm/commands/serve.py` (the click command `serve`, reached as `trtllm-serve MODEL`
through its DefaultGroup) of TensorRT-LLM 1.2.1: MODEL, --host, --port, --backend, --tp_size,
--pp_size, --max_batch_size, --max_num_tokens, --max_seq_len, --max_beam_width,
--kv_cache_free_gpu_memory_fraction, --tokenizer, --extra_llm_api_options. What has no flag (KV-cache dtype
and block reuse, chunked prefill, scheduler policy, CUDA graphs, overlap scheduler,
llm_args) goes into the YAML, whose keys are LLM arguments
(tensorrt_llm/llmapi/llm_args.py) merged over the flags by update_llm_args_with_extra_dict.
A replica of TP x PP > 1 runs under `trtllm-llmapi-launch` in its own srun step (one rank per GPU), so the
LLM attaches to that step's MPI world instead of spawning workers (MPI_Comm_spawn fails inside srun steps).
"""

from __future__ import annotations

from typing import Any

import yaml

from harness.backends.trtllm.options import TrtllmOptions
from harness.backends.trtllm.support import runtime_kwargs

__all__ = ["LAUNCHER", "SERVE", "block_reuse", "llm_api_options", "serve_argv"]

LAUNCHER = "trtllm-llmapi-launch"
SERVE = "trtllm-serve"


def llm_api_options(options: TrtllmOptions, max_beam_width: int) -> dict[str, Any]:
    """LLM arguments trtllm-serve has no flag for (the --extra_llm_api_options file), then backend.llm_args."""
    kv_cache: dict[str, Any] = {"free_gpu_memory_fraction": options.kv_cache_free_gpu_memory_fraction,
                                "enable_block_reuse": options.enable_block_reuse}
    if options.kv_cache_dtype != "auto":
        kv_cache["dtype"] = options.kv_cache_dtype
    extra: dict[str, Any] = {"kv_cache_config": kv_cache}
    if options.enable_chunked_prefill:
        extra["enable_chunked_prefill"] = True
    if max_beam_width > 1:
        extra["max_beam_width"] = max_beam_width
    return {**extra, **runtime_kwargs(options), **options.llm_args}


def block_reuse(options: TrtllmOptions, max_beam_width: int = 1) -> bool:
    """Whether the rendered server reuses KV-cache blocks across requests (cross-query prefix caching):
    kv_cache_config.enable_block_reuse of the YAML, TensorRT-LLM's default (true) where backend.llm_args left it out."""
    kv_cache = llm_api_options(options, max_beam_width).get("kv_cache_config") or {}
    return bool(kv_cache.get("enable_block_reuse", True))


def llm_api_yaml(options: TrtllmOptions, max_beam_width: int) -> str:
    """The --extra_llm_api_options file's text."""
    return yaml.safe_dump(llm_api_options(options, max_beam_width), sort_keys=True)


def serve_argv(options: TrtllmOptions, model: str, tokenizer: str | None, host: str, port: int,
               extra_options_file: str, max_beam_width: int = 1, extra: tuple[str, ...] = ()) -> list[str]:
    """`trtllm-llmapi-launch trtllm-serve MODEL ...` for one replica (the launcher also for TP x PP = 1:
    the step's single rank then hosts the executor, and no worker is spawned)."""
    argv = [LAUNCHER, SERVE, model, "--host", host, "--port", str(port), "--backend", options.backend,
            "--tp_size", str(options.tensor_parallel_size), "--pp_size", str(options.pipeline_parallel_size),
            "--kv_cache_free_gpu_memory_fraction", str(options.kv_cache_free_gpu_memory_fraction)]
    for flag, value in (("--max_batch_size", options.max_batch_size), ("--max_num_tokens", options.max_num_tokens),
                        ("--max_seq_len", options.max_seq_len)):
        if value is not None:
            argv += [flag, str(value)]
    if max_beam_width > 1:
        argv += ["--max_beam_width", str(max_beam_width)]
    if tokenizer:
        argv += ["--tokenizer", tokenizer]
    return [*argv, "--extra_llm_api_options", extra_options_file, *extra]
