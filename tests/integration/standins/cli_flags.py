"""The command lines of TensorRT-LLM's entry points, as strict argparse parsers, for the stand-ins to check argv.

Release followed: TensorRT-LLM 1.2.1. Each table lists, per option, its spellings and whether it takes a
value, copied by hand from the definition named (the stored copy read was tensorrt_llm/commands/serve.py at
commit 00209af1, which is newer than 1.2.1: only options that 1.0 - 1.2.1 also have are listed, so a flag
missing from the release is refused here too). An option that is not listed is refused, as click/argparse do.

- trtllm-serve (click command `serve`, tensorrt_llm/commands/serve.py; `trtllm-serve MODEL` reaches it
  through DefaultGroup.resolve_command): MODEL positional, --tokenizer, --host, --port, --backend
  {pytorch,tensorrt,_autodeploy} (alias trt), --log_level, --max_beam_width, --max_batch_size,
  --max_num_tokens, --max_seq_len, --tensor_parallel_size/--tp_size, --pipeline_parallel_size/--pp_size,
  --moe_expert_parallel_size/--ep_size, --gpus_per_node, --free_gpu_memory_fraction/
  --kv_cache_free_gpu_memory_fraction, --num_postprocess_workers, --trust_remote_code (flag), --revision,
  --extra_llm_api_options, --reasoning_parser, --metadata_server_config_file, --server_role.
- trtllm-llmapi-launch (tensorrt_llm/llmapi/trtllm-llmapi-launch, a bash script): the whole argument list is
  the command (`task_with_command="${@:1}"`), run on rank 0 with OMPI_/PMIX_/PMI_/SLURM_/MPI_/UCX_/... removed.
"""

from __future__ import annotations

import argparse

__all__ = [
    "BUILD_OPTIONS",
    "CONVERT_OPTIONS",
    "LLM_API_KEYS",
    "help_requested",
    "parse_build",
    "parse_convert",
    "parse_quantize",
    "parse_serve",
    "trtllm_serve_parser",
]

# (spellings, takes a value, type, choices)
_SERVE_OPTIONS: tuple[tuple[tuple[str, ...], bool, type, tuple[str, ...] | None], ...] = (
    (("--tokenizer",), True, str, None),
    (("--host",), True, str, None),
    (("--port",), True, int, None),
    (("--backend",), True, str, ("pytorch", "tensorrt", "_autodeploy", "trt")),
    (("--log_level",), True, str, ("internal_error", "error", "warning", "info", "verbose", "debug", "trace")),
    (("--max_beam_width",), True, int, None),
    (("--max_batch_size",), True, int, None),
    (("--max_num_tokens",), True, int, None),
    (("--max_seq_len",), True, int, None),
    (("--tensor_parallel_size", "--tp_size"), True, int, None),
    (("--pipeline_parallel_size", "--pp_size"), True, int, None),
    (("--moe_expert_parallel_size", "--ep_size"), True, int, None),
    (("--gpus_per_node",), True, int, None),
    (("--free_gpu_memory_fraction", "--kv_cache_free_gpu_memory_fraction"), True, float, None),
    (("--num_postprocess_workers",), True, int, None),
    (("--trust_remote_code",), False, bool, None),
    (("--revision",), True, str, None),
    (("--extra_llm_api_options",), True, str, None),
    (("--reasoning_parser",), True, str, None),
    (("--metadata_server_config_file",), True, str, None),
    (("--server_role",), True, str, None),
)

# Top-level keys of the --extra_llm_api_options YAML the harness writes: fields of TorchLlmArgs/TrtLlmArgs
# (tensorrt_llm/llmapi/llm_args.py: kv_cache_config: KvCacheConfig, enable_chunked_prefill, max_beam_width,
# scheduler_config, cuda_graph_config, disable_overlap_scheduler, max_num_tokens, max_batch_size).
LLM_API_KEYS = frozenset({"kv_cache_config", "enable_chunked_prefill", "max_beam_width", "scheduler_config",
                          "cuda_graph_config", "disable_overlap_scheduler", "max_num_tokens", "max_batch_size"})
KV_CACHE_KEYS = frozenset({"free_gpu_memory_fraction", "enable_block_reuse", "dtype", "tokens_per_block",
                           "max_tokens"})


class _Refused(Exception):
    pass


class _Strict(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def trtllm_serve_parser() -> argparse.ArgumentParser:
    """`trtllm-serve [serve] MODEL [options]`: unknown options and bad values raise SystemExit-free errors."""
    parser = _Strict(prog="trtllm-serve", add_help=False, allow_abbrev=False)
    parser.add_argument("model")
    for spellings, takes_value, kind, choices in _SERVE_OPTIONS:
        dest = spellings[0].lstrip("-")
        if takes_value:
            parser.add_argument(*spellings, dest=dest, type=kind, choices=choices)
        else:
            parser.add_argument(*spellings, dest=dest, action="store_true")
    return parser


def parse_serve(argv: list[str]) -> argparse.Namespace:
    """Parse like click's DefaultGroup + serve: a leading 'serve' is the command name."""
    args = argv[1:] if argv[:1] == ["serve"] else argv
    return trtllm_serve_parser().parse_args(args)


Refused = _Refused


# examples/quantization/quantize.py (argparse; the stored copy read is at commit 059c97c1): the options the
# harness may emit, with their choices. --export_format {tensorrt_llm,hf} is what the hf flow uses.
_QUANTIZE_OPTIONS: tuple[tuple[str, type, tuple[str, ...] | None], ...] = (
    ("--model_dir", str, None), ("--calib_dataset", str, None),
    ("--dtype", str, ("auto", "float16", "bfloat16", "float32")),
    ("--qformat", str, ("nvfp4", "fp8", "int8_sq", "int4_awq", "w4a8_awq", "int8_wo", "int4_wo", "full_prec")),
    ("--batch_size", int, None), ("--calib_size", int, None), ("--calib_max_seq_length", int, None),
    ("--output_dir", str, None), ("--tp_size", int, None), ("--pp_size", int, None),
    ("--kv_cache_dtype", str, ("int8", "fp8")), ("--export_format", str, ("tensorrt_llm", "hf")),
    ("--device", str, ("cuda", "cpu")), ("--seed", int, None),
)


def parse_quantize(argv: list[str]) -> argparse.Namespace:
    """`python3 .../quantization/quantize.py [options]` (argv without the interpreter and script)."""
    parser = _Strict(prog="quantize.py", add_help=False, allow_abbrev=False)
    for flag, kind, choices in _QUANTIZE_OPTIONS:
        parser.add_argument(flag, type=kind, choices=choices)
    return parser.parse_args(argv)


# trtllm-build (tensorrt_llm/commands/build.py parse_arguments, stored copy at commit 008b2b8d, plus the plugin
# options that tensorrt_llm/plugin/plugin.py add_plugin_argument adds from PluginConfig for the names in its
# cli_plugin_args list: a bool field takes "enable"/"disable", a Literal dtype field its choices or "disable",
# tokens_per_block an int). Only the options the harness renders, with their value types and choices.
_ENABLE = ("enable", "disable")
BUILD_OPTIONS: tuple[tuple[str, type, tuple[str, ...] | None], ...] = (
    ("--checkpoint_dir", str, None), ("--output_dir", str, None), ("--max_batch_size", int, None),
    ("--max_input_len", int, None), ("--max_seq_len", int, None), ("--max_num_tokens", int, None),
    ("--max_beam_width", int, None), ("--workers", int, None), ("--log_level", str, None),
    ("--gemm_plugin", str, ("auto", "float16", "float32", "bfloat16", "int32", "fp8", "nvfp4", "disable")),
    ("--gemm_swiglu_plugin", str, ("fp8", "disable")),
    ("--use_paged_context_fmha", str, _ENABLE), ("--use_fp8_context_fmha", str, _ENABLE),
    ("--multiple_profiles", str, _ENABLE), ("--use_fused_mlp", str, _ENABLE),
    ("--remove_input_padding", str, _ENABLE), ("--context_fmha", str, _ENABLE), ("--tokens_per_block", int, None),
)

# examples/models/core/llama/convert_checkpoint.py (argparse, stored copy at commit 368f8f2a).
CONVERT_OPTIONS: tuple[tuple[str, type, tuple[str, ...] | None], ...] = (
    ("--model_dir", str, None), ("--output_dir", str, None), ("--tp_size", int, None), ("--pp_size", int, None),
    ("--dtype", str, ("auto", "float16", "bfloat16", "float32")),
    ("--weight_only_precision", str, ("int8", "int4", "int8_gptq", "int4_gptq", "int4_awq")),
    ("--workers", int, None),
)
_CONVERT_SWITCHES = ("--use_weight_only", "--load_model_on_cpu", "--use_parallel_embedding")


def _table_parser(prog: str, options: tuple[tuple[str, type, tuple[str, ...] | None], ...],
                  switches: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    parser = _Strict(prog=prog, add_help=False, allow_abbrev=False)
    for flag, kind, choices in options:
        parser.add_argument(flag, type=kind, choices=choices)
    for flag in switches:
        parser.add_argument(flag, action="store_true")
    return parser


def parse_build(argv: list[str]) -> argparse.Namespace:
    """`trtllm-build [options]`."""
    return _table_parser("trtllm-build", BUILD_OPTIONS).parse_args(argv)


def parse_convert(argv: list[str]) -> argparse.Namespace:
    """`python3 .../llama/convert_checkpoint.py [options]` (argv without the interpreter and script)."""
    return _table_parser("convert_checkpoint.py", CONVERT_OPTIONS, _CONVERT_SWITCHES).parse_args(argv)


def help_requested(argv: list[str], prog: str, click: bool = False) -> bool:
    """True (after printing a usage line as argparse/click would) when argv asks for --help/-h."""
    if "--help" not in argv and "-h" not in argv:
        return False
    print(f"{'Usage' if click else 'usage'}: {prog} [OPTIONS]" + (" MODEL" if click else ""))
    return True
