"""TensorRT-LLM backend: the 1.x LLM API (PyTorch backend, or legacy trtllm-build engines) as an AsyncEngine.

The only module that imports tensorrt_llm, and only when the backend starts. It holds only TensorRT-LLM calls:
the async engine core (harness.backends.core) owns the loop thread, the task table, the coalescing of
completions into one sink call per loop turn, cancel-all and the bounded stop; the rules that are not
TensorRT-LLM calls live in support.py and the shared sampling/streaming code.
``LLM.generate_async(token_ids, sampling_params, streaming=...)`` returns a RequestOutput that is async-iterable
(cumulative ``outputs[0].token_ids`` per step) and awaitable (final result); a streamed request is iterated only
up to its first token, then awaited (tensorrt_llm/executor/result.py: aresult() continues where iteration stopped).

Multi-GPU: under ``trtllm-llmapi-launch`` (srun --mpi=pmix) rank 0 runs this process and the LLM attaches
to the launcher's MPI world; without it TensorRT-LLM spawns its own workers (single node).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.backends.base import BackendInfo, BackendReport, BackendSetup
from harness.backends.core import AsyncEngineBackend, EngineBase, EngineDead, RequestFailed
from harness.backends.sampling import check_streaming_support
from harness.backends.trtllm.options import TrtllmOptions
from harness.backends.trtllm.support import (
    INSTALL_HINT,
    check_engine_dir,
    check_gpu_layout,
    check_limits,
    check_request_fits,
    check_version,
    engine_record,
    final_tokens,
    kv_cache_kwargs,
    llm_kwargs,
    sampling_kwargs,
)
from harness.errors import BackendError, EnvironmentProblem, HarnessError
from harness.types import GenerationRequest

__all__ = ["ExecutorNotReady", "TrtllmBackend", "TrtllmEngine", "import_tensorrt_llm"]


# tensorrt_llm/llmapi/llm_args.py (1.2.x): BaseLlmArgs.max_batch_size defaults to 2048 when the run sets none.
DEFAULT_MAX_BATCH_SIZE = 2048
# tensorrt_llm/_torch/pyexecutor/py_executor.py: the executor loop's assertion when no pending request can be
# scheduled (the KV cache cannot hold one); the loop ends, so every later request fails too.
_OUT_OF_RESOURCES = "fail to schedule any pending request"


def _error_summary(err: BaseException) -> str:
    """An exception's text on one line: a pydantic validation error keeps its title, field and reason (its first
    three lines), anything else its first line."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return "; ".join(lines[:3]) if "validation error" in lines[0] else lines[0]


class ExecutorNotReady(BackendError):
    """LLM(...) did not return within backend.ready_timeout_s; its loading thread is abandoned (still in native
    code), so the process must leave without interpreter teardown once the run is marked failed."""

    leaves_native_thread = True


def import_tensorrt_llm() -> ModuleType:
    """Import tensorrt_llm, or raise EnvironmentProblem (exit 3) with an install hint."""
    try:
        return importlib.import_module("tensorrt_llm")
    except ImportError as err:
        raise EnvironmentProblem(
            f"backend.kind trtllm needs the tensorrt_llm package, which cannot be imported here ({err})",
            hint=INSTALL_HINT) from err


class TrtllmEngine(EngineBase):
    """TensorRT-LLM's LLM API as an AsyncEngine (harness.backends.core); every request goes to the LLM at once, its
    own scheduler queues what exceeds max_batch_size."""

    label = "TensorRT-LLM"
    options: TrtllmOptions

    def __init__(self, options: TrtllmOptions, setup: BackendSetup) -> None:
        super().__init__(options, setup)
        self._llm: Any = None
        self._version = "unknown"  # tensorrt_llm.__version__, read at start
        self._sampling_params: Any = None  # the SamplingParams class; one fresh object per request
        self._sampling_kwargs: dict[str, Any] = {}
        self._eos = setup.sampling.eos_token_id
        self._max_seq_len: int | None = None
        self._info: BackendInfo | None = None

    def prepare(self) -> None:
        """Check version and GPU layout, build the LLM (bounded by backend.ready_timeout_s)."""
        trtllm = import_tensorrt_llm()
        version = str(getattr(trtllm, "__version__", "unknown"))
        self._version = version
        notes = check_version(version, self.options.backend)
        layout = (check_gpu_layout(self.options, self.setup.replicas)
                  if self.options.gpu_check else "GPU layout check disabled (backend.gpu_check: false)")
        model_path = str(self.setup.model.path)
        spec = self.setup.sampling
        self._max_seq_len = self.options.max_seq_len
        built_batch = None
        if self.options.backend == "tensorrt":
            built = check_engine_dir(model_path, self.options.tensor_parallel_size, self.options.pipeline_parallel_size)
            check_limits(self.options, built, spec.num_beams)
            self._max_seq_len = self._max_seq_len or built.get("max_seq_len")
            built_batch = built.get("max_batch_size")
        check_streaming_support(spec, self.setup.streams_first_token, "trtllm")
        self._sampling_params = trtllm.SamplingParams
        self._sampling_kwargs = sampling_kwargs(spec)
        self._sampling_params(**self._sampling_kwargs)  # invalid arguments fail here, before the model loads
        self._llm = self._build_llm_bounded(trtllm, model_path)
        name = self.setup.model.name or Path(model_path).name
        self._info = BackendInfo(
            name=f"trtllm {version} ({self.options.backend}, {name}, TP{self.options.tensor_parallel_size}"
                 f"xPP{self.options.pipeline_parallel_size})",
            eos_token_id=self._eos, max_batch_size=self.options.max_batch_size or built_batch or DEFAULT_MAX_BATCH_SIZE,
            streaming=True,
            device="cuda", versions={"tensorrt_llm": version}, notes=(layout, *notes),
        )

    async def open(self) -> BackendInfo:
        """The LLM is ready once its constructor returned (prepare); nothing else to load."""
        assert self._info is not None
        return self._info

    def _build_llm(self, trtllm: ModuleType, model_path: str) -> Any:
        if self.options.backend == "tensorrt":
            llm_class = importlib.import_module("tensorrt_llm._tensorrt_engine").LLM
        else:
            llm_class = trtllm.LLM
        kv_cache_config = importlib.import_module("tensorrt_llm.llmapi").KvCacheConfig(**kv_cache_kwargs(self.options))
        kwargs = llm_kwargs(self.options, model_path, None, self.setup.sampling.num_beams)
        try:
            return llm_class(kv_cache_config=kv_cache_config, **kwargs)
        except HarnessError:
            raise
        except Exception as err:  # TensorRT-LLM raises plain RuntimeError/ValueError/pydantic errors
            raise BackendError(f"TensorRT-LLM could not load {model_path}: {_error_summary(err)}",
                               hint="check model.path, the TP/PP sizes and GPU memory (see the TensorRT-LLM log)",
                               ) from err

    def _build_llm_bounded(self, trtllm: ModuleType, model_path: str) -> Any:
        """_build_llm, in a loader thread that the caller waits for at most backend.ready_timeout_s: LLM(...)
        returns once the executor (and, under trtllm-llmapi-launch, every MPI worker) is ready, and a hang there
        (NVIDIA/TensorRT-LLM#8961, PP across nodes) would otherwise hold the job until its time limit."""
        timeout = self.options.ready_timeout_s
        if timeout is None:
            return self._build_llm(trtllm, model_path)
        outcome: dict[str, Any] = {}

        def load() -> None:
            try:
                outcome["llm"] = self._build_llm(trtllm, model_path)
            except BaseException as err:  # handed to the caller's thread
                outcome["error"] = err

        loader = threading.Thread(target=load, name="trtllm-load", daemon=True)
        loader.start()
        loader.join(timeout)
        if loader.is_alive():
            world = f"TP{self.options.tensor_parallel_size} x PP{self.options.pipeline_parallel_size}"
            raise ExecutorNotReady(
                f"TensorRT-LLM's executor was not ready within backend.ready_timeout_s = {timeout:g} s "
                f"(LLM({model_path}, {world}) did not return); likely cause: the MPI workers never joined the "
                "leader (pipeline parallelism across nodes under trtllm-llmapi-launch, NVIDIA/TensorRT-LLM#8961) "
                "or a very slow load",
                hint="check every rank's log for the hang; try the one-node layout or a serve* job, or raise "
                     "backend.ready_timeout_s if loading is just slow")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["llm"]

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Check that the longest prompt + max new tokens fits max_seq_len (TensorRT-LLM would reject each such
        request mid-run); TensorRT-LLM warms its engine (and captures its CUDA graphs) when the LLM loads."""
        check_request_fits(longest_prompt, self.setup.sampling.max_new_tokens, self._max_seq_len)
        return None

    async def generate(self, request: GenerationRequest, slot: Any,
                       first: Callable[[Sequence[int]], None] | None) -> Sequence[int]:
        """One generate_async call with a fresh SamplingParams (as NVIDIA's harness does); streamed only up to the
        first token; a cancelled task aborts the request in the executor."""
        params = self._sampling_params(**self._sampling_kwargs)
        try:
            result = self._llm.generate_async(list(request.input_ids), params, streaming=first is not None)
        except RuntimeError as err:
            if "shut" in str(err).lower():  # generate_async on an LLM whose executor is shut down (llmapi/llm.py)
                raise EngineDead(str(err)) from None
            raise
        try:
            if first is not None:
                async for output in result:
                    ids = output.outputs[0].token_ids
                    if ids:
                        first(ids[:1])
                        break
            await result.aresult()
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                result.abort()
            raise
        except Exception as err:
            if _OUT_OF_RESOURCES in str(err):  # the executor loop's assertion: it serves nothing any more
                raise EngineDead(f"{_error_summary(err)} (a request needs more KV cache than the engine has: raise "
                                 "backend.kv_cache_free_gpu_memory_fraction, or lower max_seq_len / the prompt and "
                                 "output lengths)") from None
            raise
        completion = result.outputs[0]
        if completion.finish_reason == "cancelled":
            raise RequestFailed(f"TensorRT-LLM request {request.request_id}: cancelled by the executor")
        return final_tokens(completion.token_ids, completion.finish_reason, self._eos,
                            self.setup.sampling.stop_token_ids)

    def shutdown(self) -> None:
        """Shut the LLM (and its MPI workers) down; the core bounds how long this may take."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.shutdown()

    def report(self) -> BackendReport:
        """`engines`: the release and the KV-cache block reuse across requests (cross-query prefix caching) this
        LLM API instance ran with; its load is what the SUT and the dispatcher count."""
        row = engine_record(self.options, self._version, str(self.setup.model.path))
        return BackendReport(sections={"engines": [row]})


class TrtllmBackend(AsyncEngineBackend):
    """The Backend: TrtllmEngine on the async engine core."""

    def __init__(self, options: TrtllmOptions, setup: BackendSetup) -> None:
        super().__init__(TrtllmEngine(options, setup), "trtllm-loop")
