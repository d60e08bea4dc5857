"""TensorRT-LLM backend: the 1.x LLM API (PyTorch backend, or legacy trtllm-build engines) behind Backend.

The only module that imports tensorrt_llm, and only inside start(). Every rule that is not a TensorRT-LLM
call lives in shared code exercised by the hf backend (sampling.py, streaming.py, the SUT's
build_response) or in trtllm_support.py. Requests run as coroutines on an asyncio loop in a background
thread: ``LLM.generate_async(token_ids, sampling_params, streaming=...)`` returns a RequestOutput that is
async-iterable (cumulative ``outputs[0].token_ids`` per step) and awaitable (final result).

Multi-GPU: under ``trtllm-llmapi-launch`` (srun --mpi=pmix) rank 0 runs this process and the LLM attaches
to the launcher's MPI world; without it TensorRT-LLM spawns its own workers (single node).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.loop import start_loop_thread, stop_loop_thread
from harness.backends.sampling import check_streaming_support
from harness.backends.streaming import StreamRelay
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

__all__ = ["ExecutorNotReady", "TrtllmBackend", "import_tensorrt_llm"]


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


class TrtllmBackend:
    """TensorRT-LLM LLM API behind the Backend protocol."""

    def __init__(self, options: TrtllmOptions, setup: BackendSetup) -> None:
        self.options = options
        self.setup = setup
        self._llm: Any = None
        self._version = "unknown"  # tensorrt_llm.__version__, read at start
        self._sampling_params: Any = None  # the SamplingParams class; one fresh object per request
        self._sampling_kwargs: dict[str, Any] = {}
        self._relay: StreamRelay | None = None
        self._eos = setup.sampling.eos_token_id
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inflight: dict[int, Any] = {}
        self._cancelled = threading.Event()
        self._max_seq_len: int | None = None

    def start(self, sink: TokenSink) -> BackendInfo:
        """Check version and GPU layout, build the LLM, keep the sink, start the event-loop thread."""
        trtllm = import_tensorrt_llm()
        version = str(getattr(trtllm, "__version__", "unknown"))
        self._version = version
        notes = check_version(version, self.options.backend)
        layout = (check_gpu_layout(self.options, self.setup.replicas)
                  if self.options.gpu_check else "GPU layout check disabled (backend.gpu_check: false)")
        model_path = str(self.setup.model.path)
        spec = self.setup.sampling
        self._max_seq_len = self.options.max_seq_len
        if self.options.backend == "tensorrt":
            built = check_engine_dir(model_path, self.options.tensor_parallel_size, self.options.pipeline_parallel_size)
            check_limits(self.options, built, spec.num_beams)
            self._max_seq_len = self._max_seq_len or built.get("max_seq_len")
        check_streaming_support(spec, self.setup.streams_first_token, "trtllm")
        self._sampling_params = trtllm.SamplingParams
        self._sampling_kwargs = sampling_kwargs(spec)
        self._sampling_params(**self._sampling_kwargs)  # invalid arguments fail here, before the model loads
        self._llm = self._build_llm_bounded(trtllm, model_path)
        self._relay = StreamRelay(sink)
        self._start_loop()
        name = self.setup.model.name or Path(model_path).name
        return BackendInfo(
            name=f"trtllm {version} ({self.options.backend}, {name}, TP{self.options.tensor_parallel_size}"
                 f"xPP{self.options.pipeline_parallel_size})",
            eos_token_id=self._eos, max_batch_size=self.options.max_batch_size or 0, streaming=True,
            device="cuda", versions={"tensorrt_llm": version}, notes=(layout, *notes),
        )

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
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BackendError(f"TensorRT-LLM could not load {model_path}: {first}",
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

    def _start_loop(self) -> None:
        self._loop, self._thread = start_loop_thread("trtllm-loop")

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Check that the longest prompt + max new tokens fits max_seq_len (TensorRT-LLM would reject each such
        request mid-run); TensorRT-LLM warms its engine (and captures its CUDA graphs) when the LLM loads."""
        check_request_fits(longest_prompt, self.setup.sampling.max_new_tokens, self._max_seq_len)
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Schedule one coroutine per request on the loop thread; returns at once."""
        if self._loop is None or self._relay is None:
            raise BackendError("trtllm backend used before start()")
        relay = self._relay
        for request in requests:
            relay.open(request.request_id, request.want_first_token)
            asyncio.run_coroutine_threadsafe(self._serve(request, relay), self._loop)

    async def _serve(self, request: GenerationRequest, relay: StreamRelay) -> None:
        request_id = request.request_id
        if self._cancelled.is_set():
            relay.fail(request_id, BackendError("cancelled"))
            return
        try:
            params = self._sampling_params(**self._sampling_kwargs)  # fresh per request, as NVIDIA's harness does
            result = self._llm.generate_async(list(request.input_ids), params,
                                              streaming=request.want_first_token)
            self._inflight[request_id] = result
            if request.want_first_token:
                async for output in result:
                    relay.update_cumulative(request_id, output.outputs[0].token_ids)
            else:
                await result.aresult()
            completion = result.outputs[0]
            if completion.finish_reason == "cancelled":
                relay.fail(request_id, BackendError("cancelled"))
            else:
                relay.finish(request_id, final_tokens(completion.token_ids, completion.finish_reason, self._eos,
                                                       self.setup.sampling.stop_token_ids))
        except Exception as err:  # one failed request must not hang LoadGen
            relay.fail(request_id, BackendError(f"TensorRT-LLM request {request_id} failed: {err}"))
        finally:
            self._inflight.pop(request_id, None)

    def cancel_all(self) -> None:
        """Abort running requests and fail those not started yet."""
        self._cancelled.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._abort_inflight)  # _inflight belongs to the loop thread

    def _abort_inflight(self) -> None:
        for result in list(self._inflight.values()):
            with contextlib.suppress(Exception):
                result.abort()

    def report(self) -> BackendReport:
        """`engines`: the release and the KV-cache block reuse across requests (cross-query prefix caching) this
        LLM API instance ran with; its load is what the SUT and the dispatcher count."""
        row = engine_record(self.options, self._version, str(self.setup.model.path))
        return BackendReport(sections={"engines": [row]})

    def stop(self) -> None:
        """Shut the LLM (and its MPI workers) down, then stop the loop thread. Idempotent."""
        llm, self._llm = self._llm, None
        if llm is not None:
            with contextlib.suppress(Exception):
                llm.shutdown()
        loop, self._loop = self._loop, None
        thread, self._thread = self._thread, None
        stop_loop_thread(loop, thread)
