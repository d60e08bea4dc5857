"""Implementation of the tensorrt_llm fake: the LLM API surface harness.backends.trtllm uses, and an access log.

Written from reading TensorRT-LLM 1.2-era sources (the release named is 1.2.1, tag v1.2.1); nothing is copied, and
tests/unit/fakes/test_tensorrt_llm_fake.py checks names, defaults, value kinds and messages against the tag.
- tensorrt_llm/llmapi/llm.py: LLM(_TorchLLM(BaseLLM)).__init__(model, tokenizer=None, tokenizer_mode='auto',
  skip_tokenizer_init=False, trust_remote_code=False, tensor_parallel_size=1, dtype='auto', revision=None,
  tokenizer_revision=None, **kwargs): _TorchLLM refuses TrtLlmArgs-only keys, BaseLLM keys that are no LlmArgs
  field ("<cls> got invalid argument: <key>"), then the pydantic LlmArgs model validates everything (TorchLlmArgs;
  TrtLlmArgs for tensorrt_llm._tensorrt_engine.LLM = _TrtLLM). generate_async(inputs, sampling_params=None,
  lora_request=None, prompt_adapter_request=None, streaming=False, ...) raises RuntimeError("LLM is shutting down")
  after shutdown; its _check_arguments raises ValueError (PyTorch without chunked prefill: prompt > max_num_tokens;
  engines: prompt + max_tokens > the engine's max_seq_len, beam width > max_beam_width).
- tensorrt_llm/llmapi/llm_args.py: StrictBaseModel (llmapi/utils.py) is pydantic v2 with extra="forbid", values
  validated in lax mode ("8" -> 8 for an int; 8.5, or 2 for a bool, refused). The models below are pydantic models
  with the real names, types and defaults of the subset the fake accepts: BaseLlmArgs (max_batch_size 2048,
  max_input_len 1024, max_num_tokens 8192, max_beam_width 1; None means those), TorchLlmArgs (+ cuda_graph_config,
  disable_overlap_scheduler), TrtLlmArgs (+ build_config; asserts KvCacheConfig.dtype == "auto"), KvCacheConfig,
  SchedulerConfig (CapacitySchedulerPolicy, default GUARANTEED_NO_EVICT), CudaGraphConfig.
- tensorrt_llm/sampling_params.py: SamplingParams is a kw_only, slots dataclass (no pydantic). __post_init__ sets
  pad_id from end_id and best_of from n; _validate checks 0 <= top_p <= 1, top_k >= 0, temperature >= 0,
  best_of >= n, no greedy decoding with best_of > 1, truncate_prompt_tokens >= 1. No type checks: top_p="0.5" fails
  with its comparison's TypeError, and a non-int max_tokens only in the executor (here: a RequestError from the
  awaited result, the way worker errors reach the client).
- tensorrt_llm/executor/result.py: GenerationResult (RequestOutput's base) is awaitable (aresult), async-iterable
  (each step extends outputs[i].token_ids cumulatively), has `finished` and abort(); an error response raises
  RequestError (executor/utils.py). A step may carry several tokens (overlap scheduler, speculative decoding,
  stream_interval): STATE.tokens_per_step.
- Scheduling (capacity and micro-batch schedulers, tensorrt_llm/_torch/pyexecutor/py_executor.py): at most
  max_batch_size requests run; a step spends at most max_num_tokens tokens (one per running request, plus a new
  request's prompt, which chunked prefill may split); the rest wait in a FIFO queue. GUARANTEED_NO_EVICT reserves
  the KV blocks (KvCacheConfig.tokens_per_block) of prompt + max_tokens at admission, so a request waits for free
  blocks (the fake applies this rule under every policy). When nothing runs and the head of the queue can never
  fit, the executor loop's assertion (NO_RESOURCE) ends the executor: every waiting and later request fails with it.
- NVIDIA/TensorRT-LLM#8961: LLM(...) can block forever while the leader waits for MPI workers (hang_in_construction
  or FAKE_TRTLLM_HANG_IN_CONSTRUCTION=1); shutdown() joins them and can block too (hang_in_shutdown or
  FAKE_TRTLLM_HANG_IN_SHUTDOWN=1) or be slow (shutdown_delay_s).
- executor/executor.py GenerationExecutor.create + llmapi/mpi_session.py MpiPoolSession: without
  trtllm-llmapi-launch (TLLM_SPAWN_PROXY_PROCESS) workers start with MPI_Comm_spawn, which fails inside a multi-rank
  srun/mpirun world (NVIDIA/TensorRT-LLM#5495): a RuntimeError at construction.
Not in the real package, kept for tests/unit/harness/backends/trtllm/test_adapter.py: an invalid nested config given
as a dict gets a last line naming its class, unknown keys say "unknown", and CudaGraphConfig refuses batch sizes < 1.
Generated tokens are a deterministic function of the prompt; nothing here imitates model quality.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError, field_validator, model_validator

ACCESSED: set[str] = set()
_ABORTS = 0  # RequestOutput.abort() calls so far (the scheduler scans its queues for aborted requests only then)
NO_RESOURCE = "fail to schedule any pending request, probably run out of resource."  # py_executor.py assertion


def record(name: str) -> None:
    """Log one touched API name (module attribute, method, field or keyword)."""
    ACCESSED.add(name)


@dataclass
class State:
    """Knobs the tests turn: version, device count, whether end_id appears in token_ids, time per step, failures."""

    version: str = "1.2.1"
    device_count: int = 8
    include_end_id: bool = False
    step_delay_s: float = 0.0  # wall time of one executor step
    tokens_per_step: int = 1  # > 1: each streamed step carries that many new tokens
    fail_after_tokens: int | None = None  # a RequestError after this many tokens (mid-stream failure)
    hang_in_construction: bool = False  # LLM(...) never returns (executor never ready, NVIDIA/TensorRT-LLM#8961)
    kv_cache_tokens: int | None = None  # tokens the KV cache holds (None: unlimited; KvCacheConfig.max_tokens caps too)
    hang_in_shutdown: bool = False  # LLM.shutdown() never returns (MPI workers never join)
    shutdown_delay_s: float = 0.0  # LLM.shutdown() takes this long
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
    truncate_prompt_tokens: int | None = None
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            if getattr(self, item.name) != item.default:
                record(f"tensorrt_llm.SamplingParams({item.name}=)")
        if self.pad_id is None:
            self.pad_id = self.end_id
        self.best_of = self.best_of or self.n
        self._validate()

    def _validate(self) -> None:
        if self.top_p is not None and (self.top_p < 0 or self.top_p > 1):
            raise ValueError(f"require 0 <= top_p <= 1, got top_p={self.top_p}")
        if self.top_k is not None and self.top_k < 0:
            raise ValueError(f"require top_k >= 0, got top_k={self.top_k}")
        if self.temperature is not None and self.temperature < 0:
            raise ValueError(f"require temperature >= 0, got temperature={self.temperature}")
        if self.best_of is not None and self.best_of < self.n:
            raise ValueError(f"best_of ({self.best_of}) cannot be less than n ({self.n})")
        if self.best_of is not None and self.best_of > 1 and self._greedy_decoding \
                and not os.environ.get("TLLM_ALLOW_N_GREEDY_DECODING"):
            raise ValueError(f"Greedy decoding in the LLM API does not allow multiple returns. Please set to "
                             f"best_of=1, got best_of={self.best_of}. Please set to best_of=1 or set an environment "
                             "variable TLLM_ALLOW_N_GREEDY_DECODING=1 to allow best_of > 1 under the greedy decoding.")
        if self.truncate_prompt_tokens is not None and self.truncate_prompt_tokens < 1:
            raise ValueError(f"truncate_prompt_tokens must be >= 1, got {self.truncate_prompt_tokens}")

    @property
    def _greedy_decoding(self) -> bool:
        implied = (self.temperature is None and self.top_p is None and self.top_k is None) or self.top_k == 1 \
            or self.top_p == 0.0 or self.temperature == 0
        return not self.use_beam_search and implied


class _Strict(BaseModel):
    """tensorrt_llm/llmapi/utils.py StrictBaseModel: unknown fields are refused, values validated in lax mode."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class CapacitySchedulerPolicy(StrEnum):
    MAX_UTILIZATION = "MAX_UTILIZATION"
    GUARANTEED_NO_EVICT = "GUARANTEED_NO_EVICT"
    STATIC_BATCH = "STATIC_BATCH"


class ContextChunkingPolicy(StrEnum):
    FIRST_COME_FIRST_SERVED = "FIRST_COME_FIRST_SERVED"
    EQUAL_PROGRESS = "EQUAL_PROGRESS"


class DynamicBatchConfig(_Strict):
    enable_batch_size_tuning: bool = True
    enable_max_num_tokens_tuning: bool = False
    dynamic_batch_moving_average_window: int = 128


class SchedulerConfig(_Strict):
    capacity_scheduler_policy: CapacitySchedulerPolicy = CapacitySchedulerPolicy.GUARANTEED_NO_EVICT
    context_chunking_policy: ContextChunkingPolicy | None = None
    dynamic_batch_config: DynamicBatchConfig | None = None


class CudaGraphConfig(_Strict):
    batch_sizes: list[int] | None = None
    max_batch_size: NonNegativeInt = 0
    enable_padding: bool = False

    @field_validator("batch_sizes")
    @classmethod
    def _positive(cls, sizes: list[int] | None) -> list[int] | None:  # fake-only rule, see the module docstring
        if sizes is not None and any(size < 1 for size in sizes):
            raise ValueError(f"batch sizes must be positive, got {sizes}")
        return sizes

    @model_validator(mode="after")
    def _max_of_sizes(self) -> CudaGraphConfig:
        if self.batch_sizes:
            self.batch_sizes = sorted(self.batch_sizes)
            if self.max_batch_size == 0:
                self.max_batch_size = self.batch_sizes[-1]
            elif self.max_batch_size != self.batch_sizes[-1]:
                raise ValueError("CudaGraphConfig.max_batch_size is incompatible with CudaGraphConfig.batch_sizes. "
                                 "When both are provided, max_batch_size must equal max(batch_sizes).")
        return self


class KvCacheConfig(_Strict):
    """tensorrt_llm.llmapi.KvCacheConfig; logs the keywords it is built with."""

    enable_block_reuse: bool = True
    max_tokens: int | None = None
    free_gpu_memory_fraction: float | None = Field(default=0.9, ge=0, le=1)
    host_cache_size: int | None = None
    dtype: str = "auto"
    tokens_per_block: int = 32

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        for name in data:
            record(f"tensorrt_llm.llmapi.KvCacheConfig({name}=)")


class BaseLlmArgs(_Strict):
    """The BaseLlmArgs fields the fake accepts (the explicit LLM.__init__ arguments first)."""

    model: str | Path
    tokenizer: Any = None
    tokenizer_mode: Literal["auto", "slow"] = "auto"
    skip_tokenizer_init: bool = False
    trust_remote_code: bool = False
    tensor_parallel_size: int = 1
    dtype: str = "auto"
    revision: str | None = None
    tokenizer_revision: str | None = None
    pipeline_parallel_size: int = 1
    enable_attention_dp: bool = False
    kv_cache_config: KvCacheConfig = Field(default_factory=KvCacheConfig)
    enable_chunked_prefill: bool = False
    scheduler_config: SchedulerConfig = Field(default_factory=SchedulerConfig)
    max_batch_size: int | None = 2048
    max_input_len: int | None = 1024
    max_seq_len: int | None = None
    max_beam_width: int | None = 1
    max_num_tokens: int | None = 8192
    backend: str | None = None

    @model_validator(mode="after")
    def _none_means_default(self) -> BaseLlmArgs:
        for name in ("max_batch_size", "max_input_len", "max_beam_width", "max_num_tokens"):
            if getattr(self, name) is None:
                setattr(self, name, type(self).model_fields[name].default)
        return self


class TorchLlmArgs(BaseLlmArgs):
    cuda_graph_config: CudaGraphConfig | None = Field(default_factory=CudaGraphConfig)
    disable_overlap_scheduler: bool = False


class TrtLlmArgs(BaseLlmArgs):
    build_config: Any = None

    @model_validator(mode="after")
    def _engine_kv_dtype(self) -> TrtLlmArgs:
        assert self.kv_cache_config.dtype == "auto", "KvCacheConfig.dtype is not supported by the TensorRT backend."
        return self


_NESTED = {"kv_cache_config": KvCacheConfig, "scheduler_config": SchedulerConfig, "cuda_graph_config": CudaGraphConfig}


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
        global _ABORTS
        self._aborted = True
        _ABORTS += 1

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


@dataclass(eq=False)  # identity: the scheduler removes a sequence from its lists by identity, in O(1) compares
class _Sequence:
    """One request inside the fake executor: its answer, the KV blocks it holds, how far it has got."""

    result: RequestOutput
    tokens: list[int]
    reason: str
    blocks: int
    prefill_left: int
    emitted: int = 0

    def send(self, tokens: list[int], reason: str | None, error: str | None = None) -> None:
        self.result._queue.put_nowait((tokens, reason, error))


class _Executor:
    """In-flight batching of one LLM: a FIFO queue, the running batch, KV blocks, one step at a time on the loop."""

    def __init__(self, args: BaseLlmArgs) -> None:
        self.max_batch_size = int(args.max_batch_size or 2048)
        self.max_num_tokens = int(args.max_num_tokens or 8192)
        self.chunked = args.enable_chunked_prefill
        self.tokens_per_block = max(1, args.kv_cache_config.tokens_per_block)
        from_env = os.environ.get("FAKE_TRTLLM_KV_CACHE_TOKENS")  # the same knob for a subprocess
        caps = [cap for cap in (STATE.kv_cache_tokens, args.kv_cache_config.max_tokens,
                                int(from_env) if from_env else None) if cap is not None]
        self.kv_blocks = min(caps) // self.tokens_per_block if caps else None
        self.waiting: deque[_Sequence] = deque()
        self.running: list[_Sequence] = []
        self.used_blocks = 0
        self.peak_running = 0
        self.peak_queued = 0
        self.failure: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aborts_seen = _ABORTS

    def submit(self, result: RequestOutput) -> None:
        params = result._params
        if not isinstance(params.max_tokens, int):  # the executor's Request (C++ binding) takes an int only
            result._queue.put_nowait(([], None, f"Request.__init__(): incompatible constructor arguments: "
                                                f"max_tokens={params.max_tokens!r} is not an int"))
            return
        if self.failure is not None:
            result._queue.put_nowait(([], None, self.failure))
            return
        tokens, reason = fake_tokens(result._prompt, params)
        blocks = math.ceil((len(result._prompt) + params.max_tokens) / self.tokens_per_block)
        self.waiting.append(_Sequence(result, tokens, reason, blocks, len(result._prompt)))
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop, self._task = loop, loop.create_task(self._drive())

    async def _drive(self) -> None:
        while self.waiting or self.running:
            await asyncio.sleep(STATE.step_delay_s)
            self.step()
        self._task = None

    def step(self) -> None:
        """One iteration: drop aborted requests, advance the running batch, admit what fits, detect a dead end."""
        self._drop_aborted()
        budget = self._advance(self.max_num_tokens)
        self._admit(budget)
        if self.waiting and not self.running and not self._could_ever_fit(self.waiting[0]):
            self.failure = NO_RESOURCE
            while self.waiting:
                self.waiting.popleft().send([], None, NO_RESOURCE)
        self.peak_running = max(self.peak_running, len(self.running))
        self.peak_queued = max(self.peak_queued, len(self.waiting))

    def _drop_aborted(self) -> None:
        if self._aborts_seen == _ABORTS:  # nothing aborted since the last step: no scan of the queue
            return
        self._aborts_seen = _ABORTS
        for seq in [s for s in self.waiting if s.result._aborted]:
            self.waiting.remove(seq)
            seq.send([], "cancelled")
        for seq in [s for s in self.running if s.result._aborted]:
            self._finish(seq, [], "cancelled")

    def _advance(self, budget: int) -> int:
        for seq in list(self.running):
            if budget <= 0:
                break
            if seq.prefill_left:
                taken = min(budget, seq.prefill_left)
                seq.prefill_left -= taken
                budget -= taken
            else:
                budget -= 1
            if not seq.prefill_left:
                self._emit(seq)
        return budget

    def _admit(self, budget: int) -> None:
        while self.waiting and len(self.running) < self.max_batch_size:
            seq = self.waiting[0]
            if self.kv_blocks is not None and self.used_blocks + seq.blocks > self.kv_blocks:
                break  # GUARANTEED_NO_EVICT: wait until enough blocks are free
            if budget <= 0 or (not self.chunked and seq.prefill_left > budget):
                break
            self.waiting.popleft()
            self.used_blocks += seq.blocks
            self.running.append(seq)
            taken = min(budget, seq.prefill_left)
            seq.prefill_left -= taken
            budget -= taken
            if not seq.prefill_left:
                self._emit(seq)  # the context step yields the first token

    def _could_ever_fit(self, seq: _Sequence) -> bool:
        fits_kv = self.kv_blocks is None or seq.blocks <= self.kv_blocks
        return fits_kv and (self.chunked or seq.prefill_left <= self.max_num_tokens)

    def _emit(self, seq: _Sequence) -> None:
        if STATE.fail_after_tokens is not None and seq.emitted >= STATE.fail_after_tokens:
            self._finish(seq, [], None, "Encountered an error in forwardAsync function: CUDA error")
            return
        step = max(1, STATE.tokens_per_step)
        chunk = seq.tokens[seq.emitted:seq.emitted + step]
        seq.emitted += step
        if seq.emitted >= len(seq.tokens):
            self._finish(seq, chunk, seq.reason)
        else:
            seq.send(chunk, None)

    def _finish(self, seq: _Sequence, tokens: list[int], reason: str | None, error: str | None = None) -> None:
        self.running.remove(seq)  # at most max_batch_size long
        self.used_blocks -= seq.blocks
        seq.send(tokens, reason, error)


class LLM:
    """tensorrt_llm.LLM (PyTorch backend in 1.x) and tensorrt_llm._tensorrt_engine.LLM (engine dirs)."""

    _record_as: ClassVar[str] = "tensorrt_llm.LLM"
    _real_name: ClassVar[str] = "LLM"
    _args_class: ClassVar[type[BaseLlmArgs]] = TorchLlmArgs

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
        self.args = self._parse_args(dict(model=model, tokenizer=tokenizer, tokenizer_mode=tokenizer_mode,
                                          skip_tokenizer_init=skip_tokenizer_init, trust_remote_code=trust_remote_code,
                                          tensor_parallel_size=tensor_parallel_size, dtype=dtype, revision=revision,
                                          tokenizer_revision=tokenizer_revision), kwargs)
        world = self.args.tensor_parallel_size * self.args.pipeline_parallel_size
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
        self.max_num_tokens = int(self.args.max_num_tokens or 8192)
        self.max_seq_len = self.args.max_seq_len
        self.max_beam_width = int(self.args.max_beam_width or 1)
        self.chunked = self.args.enable_chunked_prefill
        self.world_size = world
        self.shut_down = False
        self._next_id = 0
        self._executor = _Executor(self.args)
        self.requests: list[list[int]] = []
        STATE.llms.append(self)

    @classmethod
    def _parse_args(cls, explicit: dict[str, Any], kwargs: dict[str, Any]) -> BaseLlmArgs:
        """_TorchLLM's TensorRT-only key check, BaseLLM's unknown-key check, then pydantic validation."""
        trt_only = sorted(set(kwargs) & (set(TrtLlmArgs.model_fields) - set(cls._args_class.model_fields)))
        if trt_only:
            raise ValueError(f"The following arguments are specific to TensorRT backend and cannot be used with "
                             f"PyTorch backend: {trt_only}.\nPlease use 'from tensorrt_llm._tensorrt_engine import "
                             "LLM' instead to use the TensorRT backend.")
        for key in kwargs:
            if key not in cls._args_class.model_fields:
                raise ValueError(f"{cls._real_name} got invalid argument: {key} (unknown to "
                                 f"{cls._args_class.__name__}, whose fields are extra='forbid')")
        try:
            return cls._args_class(**explicit, **kwargs)
        except ValidationError as err:
            nested = sorted({str(e["loc"][0]) for e in err.errors() if len(e["loc"]) > 1 and e["loc"][0] in _NESTED})
            if not nested:
                raise
            names = ", ".join(f"{name} is a {_NESTED[name].__name__}" for name in nested)
            raise ValueError(f"{err}\n[fake] {names} (tensorrt_llm/llmapi/llm_args.py)") from err

    @property
    def peak_running(self) -> int:
        """Most requests that ran in one step."""
        return self._executor.peak_running

    @property
    def peak_queued(self) -> int:
        """Most requests left waiting (for a batch slot, the token budget or KV blocks) after a scheduling step."""
        return self._executor.peak_queued

    def generate_async(self, inputs: Any, sampling_params: SamplingParams | None = None, lora_request: Any = None,
                       prompt_adapter_request: Any = None, streaming: bool = False, **kwargs: Any) -> RequestOutput:
        record(f"{self._record_as}.generate_async")
        record(f"{self._record_as}.generate_async(streaming=)")
        asyncio.get_running_loop()  # the real result's async queue needs one (executor/result.py)
        if self.shut_down:
            raise RuntimeError("LLM is shutting down")
        params = sampling_params or SamplingParams()
        if not isinstance(params, SamplingParams):
            raise TypeError(f"The sampling_params must be type SamplingParams or None, but got {type(params)}")
        if params.end_id is None and self.args.skip_tokenizer_init:
            raise ValueError("tokenizer is required to reset end_id if it is None, or you can explicitly specify "
                             "the end_id for sampling_params")
        if not isinstance(inputs, list) or not all(isinstance(t, int) for t in inputs):
            raise TypeError(f"The inputs must be type str or list of int, but got {type(inputs)}")
        self._check_arguments(list(inputs), params)
        self._next_id += 1
        self.requests.append(list(inputs))
        result = RequestOutput(self._next_id, list(inputs), params, streaming)
        self._executor.submit(result)
        return result

    def _check_arguments(self, prompt: list[int], params: SamplingParams) -> None:
        if params.use_beam_search and (params.best_of or 1) > self.max_beam_width:
            raise ValueError(f"sampling_params's best_of ({params.best_of}) should not exceed max_beam_width "
                             f"({self.max_beam_width})")
        if not self.chunked and self.max_num_tokens and len(prompt) / 1 > self.max_num_tokens:
            raise ValueError(f"The sum of prompt length ({len(prompt) / 1}), query length (0) should not exceed "
                             f"max_num_tokens ({self.max_num_tokens})")

    def shutdown(self) -> None:
        record(f"{self._record_as}.shutdown")
        self.shut_down = True  # generate_async refuses from here on (the executor is shutting down)
        if STATE.hang_in_shutdown or os.environ.get("FAKE_TRTLLM_HANG_IN_SHUTDOWN") == "1":
            threading.Event().wait()  # as the real shutdown waits for MPI workers that never exit
        if STATE.shutdown_delay_s > 0:
            time.sleep(STATE.shutdown_delay_s)


class EngineLLM(LLM):
    """tensorrt_llm._tensorrt_engine.LLM (the llmapi _TrtLLM class), for trtllm-build engine dirs."""

    _record_as: ClassVar[str] = "tensorrt_llm._tensorrt_engine.LLM"
    _real_name: ClassVar[str] = "_TrtLLM"
    _args_class: ClassVar[type[BaseLlmArgs]] = TrtLlmArgs

    def _engine_max_seq_len(self) -> int | None:
        """The engine's build_config.max_seq_len from its config.json (what _check_arguments reads), else the arg."""
        config = Path(self.model) / "config.json"
        built = json.loads(config.read_text()).get("build_config", {}) if config.is_file() else {}
        return built.get("max_seq_len", self.max_seq_len)

    def _check_arguments(self, prompt: list[int], params: SamplingParams) -> None:
        max_seq_len = self._engine_max_seq_len()
        if not self.chunked and max_seq_len is not None \
                and len(prompt) / 1 + 0 + (params.max_tokens or 0) > max_seq_len:
            raise ValueError(f"The sum of prompt length ({len(prompt) / 1}) and query length (0) max_tokens "
                             f"({params.max_tokens}) should not exceed max_seq_len ({max_seq_len})")
        if params.use_beam_search and (params.best_of or 1) > self.max_beam_width:
            which = "n" if params.n == params.best_of else "best_of"
            raise ValueError(f"sampling_params.{which} ({getattr(params, which)}) cannot exceed max_beam_width "
                             f"({self.max_beam_width}) when use_beam_search is True")
