"""PyTorch/transformers backend: batched generate() on CPU, a static-cache graph decoder on CUDA.

A worker thread takes queued requests in the order the SUT submitted them (Offline: sorted by input
length), forms batches of up to max_batch_size (waiting batch_wait_ms to fill one when requests trickle
in, as in Server), left-pads them and calls generate(). A streamer forwards each row's first generated
token as soon as the first decode step ends. EOS trimming and n_tokens are the SUT's job.
cancel_all() also stops the batch being generated after its current decode step (a stopping criterion
in generate(), a flag check in the static decoder's step loop); its requests fail with 'cancelled'.
On CUDA (backend.decode auto/static), greedy Llama models decode through harness.backends.hf_decode
(static KV cache, CUDA-graph steps, no per-token host sync); everything else uses transformers generate().
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np
import torch

from harness.backends.base import BackendInfo, BackendReport, BackendSetup, TokenSink
from harness.backends.hf.options import HfOptions
from harness.backends.sampling import check_streaming_support, hf_generate_kwargs
from harness.backends.streaming import StreamRelay
from harness.backends.worker import RequestQueue
from harness.errors import BackendError, ConfigError
from harness.model_files import EMBEDDED_NAME, force_offline, resolve_model
from harness.types import GenerationRequest

__all__ = ["HfBackend", "cpu_threads_per_rank", "pick_device", "pick_dtype"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(requested: str) -> str:
    """auto -> cuda when available, else cpu; an explicit cuda without a GPU is an error."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("auto:"):  # replica N of a data-parallel run
        index = int(requested.partition(":")[2])
        return f"cuda:{index % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"backend.device is {requested!r} but no CUDA device is visible",
                          hint="use backend.device: cpu (or auto), or run on a GPU node")
    return requested


def cpu_threads_per_rank(environ: dict[str, str] | None = None) -> int:
    """Cores of this host divided among the ranks on it: oversubscribed OpenMP threads spin and crawl."""
    env = os.environ if environ is None else environ
    counts = (env.get(v, "").split("(")[0] for v in ("OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_STEP_TASKS_PER_NODE",
                                                      "SLURM_NTASKS_PER_NODE", "LOCAL_WORLD_SIZE"))
    local = next((int(count) for count in counts if count.isdigit()), 1)
    return max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1) // local)


def pick_dtype(requested: str, device: str) -> torch.dtype:
    """auto -> bfloat16 on CUDA, float32 on CPU."""
    if requested == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return _DTYPES[requested]


class _PresencePenalty:
    """Subtracts a fixed penalty from the logits of every token already generated (OpenAI semantics)."""

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty = penalty
        self.prompt_length = prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_length:]
        if generated.shape[1] == 0:
            return scores
        present = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, generated, True)
        return scores - self.penalty * present.to(scores.dtype)


class _StopWhenCancelled:
    """transformers StoppingCriteria: every row is done as soon as the backend is cancelled, so a batch inside
    generate() ends after the current decode step instead of running to max_new_tokens."""

    def __init__(self, cancelled: threading.Event) -> None:
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return torch.full((input_ids.shape[0],), self.cancelled.is_set(), dtype=torch.bool, device=input_ids.device)


class _FirstTokenStreamer:
    """transformers streamer: put() #1 is the prompt, put() #2 the first generated token per row."""

    def __init__(self, relay: StreamRelay, request_ids: list[int]) -> None:
        self.relay = relay
        self.request_ids = request_ids
        self.calls = 0

    def put(self, value: torch.Tensor) -> None:
        self.calls += 1
        if self.calls != 2:
            return
        self.relay.extend_each([(request_id, [token]) for request_id, token
                                in zip(self.request_ids, value.reshape(-1).tolist(), strict=False)])

    def end(self) -> None:
        return None


class HfBackend:
    """transformers generate() (or the static decoder) behind the Backend protocol."""

    def __init__(self, options: HfOptions, setup: BackendSetup) -> None:
        self.options = options
        self.setup = setup
        self.spec = setup.sampling
        self.model: Any = None
        self._sink: TokenSink | None = None
        self._requests = RequestQueue("hf-backend", stop_timeout_s=60)
        self._device = "cpu"
        self._static: Any = None
        self._notes: list[str] = []

    def start(self, sink: TokenSink) -> BackendInfo:
        """Load the model (offline only), keep the sink, then start the worker thread."""
        force_offline()
        check_streaming_support(self.spec, self.setup.streams_first_token, "hf")
        torch.set_num_threads(self.options.threads or cpu_threads_per_rank())
        self._device = pick_device(self.options.device)
        dtype = pick_dtype(self.options.dtype, self._device)
        self.model = self._load_model(dtype)
        self._static = self._static_decoder()
        self._sink = sink
        self._requests.start(self._work)
        model = self.setup.model
        name = model.name or (EMBEDDED_NAME if model.is_embedded else model.path)
        decode = "static decode" if self._static is not None else "generate"
        return BackendInfo(
            name=f"hf ({name}, {self._device}, {str(dtype).removeprefix('torch.')}, {decode})",
            eos_token_id=self.spec.eos_token_id, max_batch_size=self.options.max_batch_size, streaming=True,
            device=self._device, versions=_versions(), notes=tuple(self._notes),
        )

    def _static_decoder(self) -> Any:
        """The static-cache decoder when backend.decode allows it and the model/sampling suit it; else None."""
        mode = self.options.decode
        if mode == "generate" or (mode == "auto" and not self._device.startswith("cuda")):
            return None
        from harness.backends.hf.decode import StaticDecoder, unsupported_reason

        reason = unsupported_reason(self.model, self.spec)
        if reason is None:
            return StaticDecoder(self.model, self.spec, self.options.max_batch_size)
        if mode == "static":
            raise ConfigError(f"backend.decode is 'static', but {reason}",
                              hint="set backend.decode to auto or generate for this model and sampling")
        self._notes.append(f"hf decodes with generate(): {reason}")
        return None

    def _load_model(self, dtype: torch.dtype) -> Any:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress display is the one the user watches

        files = resolve_model(self.setup.model.path)
        kwargs: dict[str, Any] = {"dtype": dtype}
        if files.gguf_file:
            kwargs["gguf_file"] = files.gguf_file
        try:
            model = AutoModelForCausalLM.from_pretrained(str(files.directory), **kwargs)
        except (OSError, ValueError, RuntimeError) as err:
            raise BackendError(f"cannot load model {files.display}: {str(err).splitlines()[0]}",
                               hint="check model.path points at a complete HF checkpoint or GGUF file") from err
        return model.to(self._device).eval()

    def warm_up(self, longest_prompt: int, batch_sizes: Sequence[int]) -> str | None:
        """Static decoder: size the KV cache and capture the decode graphs before the timed run."""
        if self._static is None:
            return None
        started = time.monotonic()
        limit = self.options.max_batch_size
        captured = self._static.warm_up(longest_prompt, [min(size, limit) for size in batch_sizes])
        return (f"KV cache for {self._static.capacity} slots, {captured} decode graphs captured in "
                f"{time.monotonic() - started:.1f} s before the timed run")

    def submit(self, requests: Sequence[GenerationRequest]) -> None:
        """Queue requests; the worker batches them in order."""
        if self._sink is None:
            raise BackendError("hf backend used before start()")
        self._requests.put(requests)

    def cancel_all(self) -> None:
        """Drop queued requests and stop the batch in generation after its current step (each fails with
        'cancelled')."""
        self._requests.cancel()

    def stop(self) -> None:
        """Stop the worker and free the model."""
        self._requests.stop()
        if self._static is not None:
            self._static.release()
        self.model = None
        self._static = None

    def report(self) -> BackendReport:
        """Nothing beyond what the SUT and the dispatcher count (one in-process model)."""
        return BackendReport()

    def _next_batch(self, backlog: list[GenerationRequest]) -> list[GenerationRequest] | None:
        limit = self.options.max_batch_size
        deadline = time.monotonic() + self.options.batch_wait_ms / 1000
        while len(backlog) < limit:
            timeout = deadline - time.monotonic() if backlog else None
            if timeout is not None and timeout <= 0:
                break
            try:
                item = self._requests.jobs.get(timeout=timeout)
            except queue.Empty:
                break
            if item is None:
                return None if not backlog else backlog[:]
            backlog.extend(item)
        batch, backlog[:] = backlog[:limit], backlog[limit:]
        return batch

    def _work(self) -> None:
        backlog: list[GenerationRequest] = []
        assert self._sink is not None
        while True:
            batch = self._next_batch(backlog)
            if not batch:
                return
            if self._requests.cancelled.is_set():
                for request in batch:
                    self._sink.fail(request.request_id, RuntimeError("cancelled"))
                continue
            self._generate_batch(batch)

    def _generate_batch(self, batch: list[GenerationRequest]) -> None:
        assert self._sink is not None
        relay = StreamRelay(self._sink)
        request_ids = [request.request_id for request in batch]
        for request in batch:
            relay.open(request.request_id, request.want_first_token)
        try:
            rows = self.generate([list(r.input_ids) for r in batch], relay, request_ids,
                                 any(r.want_first_token for r in batch))
            if self._requests.cancelled.is_set():  # stopped early: the rows are incomplete, never answers
                relay.fail_all(RuntimeError("cancelled"))
                return
            relay.finish_rows(request_ids, rows)
        except Exception as err:  # a model failure must not hang LoadGen: fail the requests
            relay.fail_all(BackendError(f"hf generate failed: {err}"))

    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], relay: StreamRelay | None = None,
                 request_ids: list[int] | None = None, stream_first: bool = False) -> np.ndarray:
        """Greedy/sampled generation for a batch of token-id prompts: one row of generated ids per prompt
        (padding after EOS, which the SUT cuts)."""
        if self._static is not None:
            on_first = None
            if stream_first and relay is not None and request_ids is not None:
                on_first = _first_token_forwarder(relay, request_ids)
            return self._static.generate(prompts, on_first, self._requests.cancelled.is_set)
        width = max(len(p) for p in prompts)
        pad = self.spec.pad_token_id
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=self._device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self._device)
        kwargs = hf_generate_kwargs(self.spec)
        if self.spec.presence_penalty:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([_PresencePenalty(self.spec.presence_penalty, width)])
        if stream_first and relay is not None and request_ids is not None:
            kwargs["streamer"] = _FirstTokenStreamer(relay, request_ids)
        from transformers import StoppingCriteriaList

        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopWhenCancelled(self._requests.cancelled)])
        output = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        return output[:, width:].to(torch.int32).cpu().numpy()


def _first_token_forwarder(relay: StreamRelay, request_ids: list[int]) -> Any:
    def forward(tokens: list[int]) -> None:
        relay.extend_each([(request_id, [token]) for request_id, token in zip(request_ids, tokens, strict=False)])
    return forward


def _versions() -> dict[str, str]:
    found = {"torch": torch.__version__}
    for name in ("transformers", "accelerate", "gguf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found
