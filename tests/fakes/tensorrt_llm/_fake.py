"""Implementation of the tensorrt_llm fake: the LLM API surface harness.backends.trtllm uses, and an access log.

Written from the TensorRT-LLM 1.x sources (release named in tests/unit/harness/backends/test_trtllm_surface.py):
- tensorrt_llm/llmapi/llm.py: LLM.__init__(model, tokenizer=None, tokenizer_mode='auto', skip_tokenizer_init=False,
  trust_remote_code=False, tensor_parallel_size=1, dtype='auto', revision=None, tokenizer_revision=None, **kwargs);
  generate_async(inputs, sampling_params=None, ..., streaming=False, ...) -> RequestOutput; shutdown().
- tensorrt_llm/executor/result.py: GenerationResult (RequestOutput's base) is awaitable (aresult), async-iterable
  (each step extends outputs[i].token_ids cumulatively), has `finished` and abort(); CompletionOutput fields.
  Its queue is an asyncio queue only when created inside a running event loop.
- tensorrt_llm/sampling_params.py: SamplingParams is a kw_only dataclass; pad_id defaults to end_id.
- tensorrt_llm/llmapi/llm_args.py: KvCacheConfig(free_gpu_memory_fraction, enable_block_reuse, dtype, ...).
- tensorrt_llm/llmapi/llm.py, BaseLLM._check_arguments (called by generate_async): on the PyTorch backend without
  chunked prefill a prompt longer than max_num_tokens raises RequestError("The sum of prompt length (P), query
  length (0) should not exceed max_num_tokens (N)"); on the TensorRT backend prompt + max_tokens above
  max_seq_len raises likewise; beam search with best_of above max_beam_width (LlmArgs default 1) raises.
- tensorrt_llm/executor/result.py: a step may carry several new tokens (overlap scheduler, speculative
  decoding, stream_interval); a response with an error raises RequestError from the awaited/iterated result.
- NVIDIA/TensorRT-LLM#8961: with pipeline parallelism across nodes under trtllm-llmapi-launch, LLM(...) can
  block forever while the leader waits for its workers (hang_in_construction, or FAKE_TRTLLM_HANG_IN_CONSTRUCTION=1
  for a subprocess).
- tensorrt_llm/executor/executor.py GenerationExecutor.create + llmapi/mpi_session.py MpiPoolSession: without
  trtllm-llmapi-launch (TLLM_SPAWN_PROXY_PROCESS) the LLM starts its workers with MPI_Comm_spawn, which
  fails inside a multi-rank srun/mpirun world (NVIDIA/TensorRT-LLM#5495): modelled as a RuntimeError at
  construction when the process is one rank of a world larger than 1.
Generated tokens are a deterministic function of the prompt; nothing here imitates model quality.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

ACCESSED: set[str] = set()


def record(name: str) -> None:
    """Log one touched API name (module attribute, method, field or keyword)."""
    ACCESSED.add(name)


@dataclass
class State:
    """Knobs the tests turn: version, device count, whether end_id appears in token_ids, time per token."""

    version: str = "1.2.1"
    device_count: int = 8
    include_end_id: bool = False
    step_delay_s: float = 0.0
    tokens_per_step: int = 1  # > 1: each streamed step carries that many new tokens
    fail_after_tokens: int | None = None  # a RequestError after this many tokens (mid-stream failure)
    hang_in_construction: bool = False  # LLM(...) never returns (executor never ready, NVIDIA/TensorRT-LLM#8961)
    llms: list[Any] = field(default_factory=list)


STATE = State()


def reset() -> None:
    """Forget the access log and restore default knobs."""
    ACCESSED.clear()
    STATE.__init__()  # type: ignore[misc]


class _Recorded:
    """Logs every public attribute read as '<record_as>.<name>'."""

    _record_as: ClassVar[str] = ""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            record(f"{type(self)._record_as}.{name}")
        return object.__getattribute__(self, name)


@dataclass(slots=True, kw_only=True)
class SamplingParams:
    """Field names, defaults and validation of tensorrt_llm.sampling_params.SamplingParams (subset of fields)."""

    end_id: int | None = None
    pad_id: int | None = None
    max_tokens: int = 32
    stop_token_ids: list[int] | None = None
    n: int = 1
    best_of: int | None = None
    use_beam_search: bool = False
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    temperature: float | None = None
    min_tokens: int | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    length_penalty: float | None = None
    early_stopping: int | None = None
    ignore_eos: bool = False
    detokenize: bool = True
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) != item.default:
                record(f"tensorrt_llm.SamplingParams({item.name}=)")
        if self.pad_id is None:
            self.pad_id = self.end_id
        self.best_of = self.best_of or self.n
        if self.best_of < self.n:
            raise ValueError(f"best_of ({self.best_of}) cannot be less than n ({self.n})")
        greedy = not self.use_beam_search and self.top_k in (None, 1) and self.top_p in (None, 0.0)
        if self.best_of > 1 and greedy:
            raise ValueError("Greedy decoding in the LLM API does not allow multiple returns.")


class KvCacheConfig:
    """tensorrt_llm.llmapi.KvCacheConfig: a pydantic model with extra='forbid' in the real package."""

    _FIELDS: ClassVar[dict[str, Any]] = {"free_gpu_memory_fraction": None, "enable_block_reuse": True,
                                         "max_tokens": None, "dtype": "auto", "host_cache_size": None}

    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - set(self._FIELDS)
        if unknown:
            raise ValueError(f"KvCacheConfig: extra fields not permitted: {sorted(unknown)}")
        for name, default in self._FIELDS.items():
            setattr(self, name, kwargs.get(name, default))
        for name in kwargs:
            record(f"tensorrt_llm.llmapi.KvCacheConfig({name}=)")


class RequestError(RuntimeError):
    """tensorrt_llm.executor.utils.RequestError: a request the executor refused or failed."""


def _mpi_world(env: Any) -> int:
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "SLURM_NTASKS"):
        if str(env.get(name, "")).isdigit():
            return int(env[name])
    return 1


class CompletionOutput(_Recorded):
    """tensorrt_llm.executor.result.CompletionOutput: index, text, token_ids, finish_reason, ..."""

    _record_as = "CompletionOutput"

    def __init__(self, index: int) -> None:
        self.index = index
        self.text = ""
        self.token_ids: list[int] = []
        self.finish_reason: str | None = None


class RequestOutput(_Recorded):
    """tensorrt_llm.llmapi.RequestOutput (a GenerationResult): await it, or `async for` over its steps."""

    _record_as = "RequestOutput"

    def __init__(self, request_id: int, prompt_token_ids: list[int], params: SamplingParams, streaming: bool) -> None:
        self.request_id = request_id
        self.prompt_token_ids = prompt_token_ids
        self._prompt = prompt_token_ids
        self._params = params
        self._streaming = streaming
        self._outputs = [CompletionOutput(i) for i in range(params.best_of or 1)]
        self._done = False
        self._aborted = False
        self._queue: asyncio.Queue[tuple[list[int], str | None, str | None]] = asyncio.Queue()

    @property
    def outputs(self) -> list[CompletionOutput]:
        return self._outputs[: self._params.n]

    @property
    def finished(self) -> bool:
        return self._done

    def abort(self) -> None:
        self._aborted = True

    async def _step(self) -> None:
        new_tokens, finish_reason, error = await self._queue.get()
        if error is not None:
            self._done = True
            raise RequestError(error)
        for output in self._outputs:
            fields = vars(output)  # internal bookkeeping: not an adapter access, so not logged
            fields["token_ids"].extend(new_tokens)
            if finish_reason is not None:
                fields["finish_reason"] = finish_reason
        self._done = finish_reason is not None

    async def aresult(self) -> RequestOutput:
        while not self._done:
            await self._step()
        return self

    def __await__(self) -> Any:
        return self.aresult().__await__()

    def __aiter__(self) -> RequestOutput:
        record("RequestOutput.__aiter__")
        return self

    async def __anext__(self) -> RequestOutput:
        if self._done:
            raise StopAsyncIteration
        await self._step()
        return self


def fake_tokens(prompt: list[int], params: SamplingParams) -> tuple[list[int], str]:
    """The deterministic answer for a prompt: (generated ids, finish reason), honouring min/max tokens."""
    natural = 3 + (sum(prompt) + len(prompt)) % 11
    minimum = max(params.min_tokens or 1, 1)
    length = min(max(natural, minimum), params.max_tokens)
    body = [1000 + (sum(prompt) * 31 + k * 17) % 5000 for k in range(length)]
    body = [t + 1 if t == params.end_id else t for t in body]
    if length < params.max_tokens:
        return ([*body, params.end_id] if STATE.include_end_id else body), "stop"
    return body, "length"


class LLM:
    """tensorrt_llm.LLM (PyTorch backend in 1.x) and tensorrt_llm._tensorrt_engine.LLM (engine dirs)."""

    _record_as: ClassVar[str] = "tensorrt_llm.LLM"
    # LlmArgs fields the fake accepts as **kwargs (the real TorchLlmArgs/TrtLlmArgs forbid unknown ones).
    # TorchLlmArgs (PyTorch backend) adds cuda_graph_config and disable_overlap_scheduler to BaseLlmArgs;
    # TrtLlmArgs (engines, EngineLLM below) has neither (tensorrt_llm/llmapi/llm_args.py, 1.2.x).
    _LLM_ARGS: ClassVar[set[str]] = {"pipeline_parallel_size", "kv_cache_config", "max_batch_size", "max_num_tokens",
                                     "max_seq_len", "enable_chunked_prefill", "scheduler_config", "backend",
                                     "build_config", "enable_attention_dp", "cuda_graph_config", "max_beam_width",
                                     "disable_overlap_scheduler"}
    # Nested StrictBaseModel (extra="forbid") configs the adapter may pass as dicts, with their fields' rules.
    _SCHEDULER_FIELDS: ClassVar[set[str]] = {"capacity_scheduler_policy", "context_chunking_policy",
                                             "dynamic_batch_config"}
    _POLICIES: ClassVar[set[str]] = {"MAX_UTILIZATION", "GUARANTEED_NO_EVICT", "STATIC_BATCH"}
    _CUDA_GRAPH_FIELDS: ClassVar[set[str]] = {"batch_sizes", "max_batch_size", "enable_padding"}

    def __init__(self, model: str, tokenizer: Any = None, tokenizer_mode: str = "auto",
                 skip_tokenizer_init: bool = False, trust_remote_code: bool = False, tensor_parallel_size: int = 1,
                 dtype: str = "auto", revision: str | None = None, tokenizer_revision: str | None = None,
                 **kwargs: Any) -> None:
        given = {"tokenizer": tokenizer, "skip_tokenizer_init": skip_tokenizer_init,
                 "tensor_parallel_size": tensor_parallel_size, **kwargs}
        record(f"{self._record_as}(model=)")
        for name, value in given.items():
            if value not in (None, False) or name in kwargs:
                record(f"{self._record_as}({name}=)")
        unknown = set(kwargs) - self._LLM_ARGS
        if unknown:
            raise ValueError(f"Failed to parse the arguments for the LLM constructor: unknown {sorted(unknown)}")
        self._check_nested(kwargs)
        world = tensor_parallel_size * int(kwargs.get("pipeline_parallel_size", 1))
        launched = os.environ.get("TLLM_SPAWN_PROXY_PROCESS") == "1"
        if not launched and _mpi_world(os.environ) > 1:
            raise RuntimeError("MPI_Comm_spawn failed: the LLM's MpiPoolSession cannot spawn workers inside an "
                               f"MPI world of {_mpi_world(os.environ)} ranks")
        if not launched and world > STATE.device_count:
            raise RuntimeError(f"Only {STATE.device_count} GPUs are available, but {world} are required.")
        if STATE.hang_in_construction or os.environ.get("FAKE_TRTLLM_HANG_IN_CONSTRUCTION") == "1":
            threading.Event().wait()  # as the real LLM waits for MPI workers that never report ready
        self.model = model
        self.kwargs = kwargs
        self.max_num_tokens = int(kwargs.get("max_num_tokens") or 8192)  # BuildConfig/LlmArgs default
        self.max_seq_len = kwargs.get("max_seq_len")
        self.max_beam_width = int(kwargs.get("max_beam_width") or 1)
        self.chunked = bool(kwargs.get("enable_chunked_prefill"))
        self.world_size = world
        self.shut_down = False
        self._next_id = 0
        self.requests: list[list[int]] = []
        STATE.llms.append(self)

    @classmethod
    def _check_nested(cls, kwargs: dict[str, Any]) -> None:
        """pydantic validation of the nested configs: extra fields forbidden, enum values, types."""
        scheduler = kwargs.get("scheduler_config")
        if isinstance(scheduler, dict):
            extra = set(scheduler) - cls._SCHEDULER_FIELDS
            policy = scheduler.get("capacity_scheduler_policy", "GUARANTEED_NO_EVICT")
            if extra or policy not in cls._POLICIES:
                raise ValueError(f"1 validation error for SchedulerConfig: extra {sorted(extra)} or capacity_scheduler_"
                                 f"policy {policy!r} not one of {sorted(cls._POLICIES)}")
        graphs = kwargs.get("cuda_graph_config")
        if isinstance(graphs, dict):
            extra = set(graphs) - cls._CUDA_GRAPH_FIELDS
            sizes = graphs.get("batch_sizes")
            bad_sizes = sizes is not None and not all(isinstance(b, int) and b > 0 for b in sizes)
            if extra or bad_sizes or not isinstance(graphs.get("enable_padding", False), bool):
                raise ValueError(f"1 validation error for CudaGraphConfig: {graphs!r}")
        overlap = kwargs.get("disable_overlap_scheduler")
        if overlap is not None and not isinstance(overlap, bool):
            raise ValueError(f"disable_overlap_scheduler must be a bool, got {overlap!r}")

    def generate_async(self, inputs: Any, sampling_params: SamplingParams | None = None, lora_request: Any = None,
                       prompt_adapter_request: Any = None, streaming: bool = False, **kwargs: Any) -> RequestOutput:
        record(f"{self._record_as}.generate_async")
        record(f"{self._record_as}.generate_async(streaming=)")
        asyncio.get_running_loop()  # the real result's async queue needs one (executor/result.py)
        if self.shut_down:
            raise RuntimeError("LLM is shut down")
        if not isinstance(inputs, list) or not all(isinstance(t, int) for t in inputs):
            raise TypeError(f"The inputs must be type str or list of int, but got {type(inputs)}")
        params = sampling_params or SamplingParams()
        self._check_arguments(list(inputs), params)
        self._next_id += 1
        self.requests.append(list(inputs))
        result = RequestOutput(self._next_id, list(inputs), params, streaming)
        asyncio.get_running_loop().create_task(self._produce(result))
        return result

    def _check_arguments(self, prompt: list[int], params: SamplingParams) -> None:
        if params.use_beam_search and (params.best_of or 1) > self.max_beam_width:
            raise ValueError(f"sampling_params's best_of ({params.best_of}) should not exceed max_beam_width "
                             f"({self.max_beam_width})")
        if isinstance(self, EngineLLM):
            if self.max_seq_len is not None and len(prompt) + params.max_tokens > self.max_seq_len:
                raise RequestError(f"The sum of prompt length ({len(prompt)}), query length (0) and max_tokens "
                                   f"({params.max_tokens}) should not exceed max_seq_len ({self.max_seq_len})")
        elif not self.chunked and len(prompt) > self.max_num_tokens:
            raise RequestError(f"The sum of prompt length ({len(prompt)}), query length (0) should not exceed "
                               f"max_num_tokens ({self.max_num_tokens})")

    async def _produce(self, result: RequestOutput) -> None:
        tokens, reason = fake_tokens(result._prompt, result._params)
        step = max(1, STATE.tokens_per_step)
        for start in range(0, len(tokens), step):
            await asyncio.sleep(STATE.step_delay_s)
            if result._aborted:
                result._queue.put_nowait(([], "cancelled", None))
                return
            if STATE.fail_after_tokens is not None and start >= STATE.fail_after_tokens:
                result._queue.put_nowait(([], None, "Encountered an error in forwardAsync function: CUDA error"))
                return
            chunk = tokens[start:start + step]
            last = start + step >= len(tokens)
            result._queue.put_nowait((chunk, reason if last else None, None))

    def shutdown(self) -> None:
        record(f"{self._record_as}.shutdown")
        self.shut_down = True


class EngineLLM(LLM):
    """tensorrt_llm._tensorrt_engine.LLM (the llmapi _TrtLLM class), for trtllm-build engine dirs."""

    _record_as: ClassVar[str] = "tensorrt_llm._tensorrt_engine.LLM"
    _LLM_ARGS: ClassVar[set[str]] = LLM._LLM_ARGS - {"cuda_graph_config", "disable_overlap_scheduler"}
