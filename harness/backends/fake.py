"""Fake backends for tests and overhead benchmarks: echo, fixed-length and oracle answers, instantly.

Runs made with them are marked not submittable. They obey the Backend contract exactly (own worker
thread, first token before completion) so the SUT and LoadGen path is exercised for real.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from harness.backends.base import BackendInfo, TokenSink
from harness.backends.worker import RequestQueue
from harness.config import FakeConfig, RunConfig
from harness.types import GenerationRequest


@lru_cache(maxsize=64)
def _fixed_tail(length: int, eos_token_id: int) -> tuple[int, ...]:
    body = [100 + (k * 7) % 20000 for k in range(1, max(length - 1, 0))]
    return (*(t if t != eos_token_id else t + 1 for t in body), eos_token_id)


def fixed_answer(sample_index: int, length: int, eos_token_id: int) -> list[int]:
    """A deterministic answer of `length` tokens (EOS last) whose first token depends on the sample index."""
    if length <= 1:
        return [eos_token_id]
    first = 100 + (sample_index * 31) % 20000
    return [first if first != eos_token_id else first + 1, *_fixed_tail(length, eos_token_id)]


class FakeBackend:
    """Answers every request from a worker thread with echo, fixed or oracle tokens."""

    def __init__(self, options: FakeConfig, max_new_tokens: int, oracle: list[list[int]] | None = None) -> None:
        self.options = options
        self.max_new_tokens = max_new_tokens
        self._oracle = oracle
        self._requests = RequestQueue("fake-backend")

    def start(self) -> BackendInfo:
        """Start the worker thread."""
        self._requests.start(self._work)
        return BackendInfo(name=f"fake ({self.options.behaviour})", eos_token_id=self.options.eos_token_id,
                           max_batch_size=1 << 20, streaming=True, submittable=False, device="none")

    def submit(self, requests: Sequence[GenerationRequest], sink: TokenSink) -> None:
        """Queue requests for the worker."""
        self._requests.put(requests, sink)

    def cancel_all(self) -> None:
        """Drop everything queued."""
        self._requests.cancel()

    def stop(self) -> None:
        """Stop the worker."""
        self._requests.stop()

    def answer(self, request: GenerationRequest) -> list[int]:
        """The tokens this fake generates for a request (before the SUT trims them)."""
        eos = self.options.eos_token_id
        if self.options.behaviour == "echo":
            tokens = [*list(request.input_ids)[: self.max_new_tokens - 1], eos]
        elif self.options.behaviour == "oracle" and self._oracle is not None:
            tokens = [*self._oracle[request.sample_index][: self.max_new_tokens - 1], eos]
        else:
            tokens = fixed_answer(request.sample_index, min(self.options.output_tokens, self.max_new_tokens), eos)
        return tokens

    def _work(self) -> None:
        while True:
            item = self._requests.jobs.get()
            if item is None:
                return
            requests, sink = item
            for request in requests:
                if self._requests.cancelled.is_set():
                    sink.fail(request.request_id, RuntimeError("cancelled"))
                    continue
                self._serve(request, sink)

    def _serve(self, request: GenerationRequest, sink: TokenSink) -> None:
        tokens = self.answer(request)
        if self.options.first_token_delay_ms:
            time.sleep(self.options.first_token_delay_ms / 1000)
        if request.want_first_token:
            sink.first_token(request.request_id, tokens[0])
        if self.options.delay_ms:
            time.sleep(self.options.delay_ms / 1000)
        sink.complete(request.request_id, tokens)


def _oracle_tokens(config: RunConfig) -> list[list[int]]:
    from harness.dataset import load_references
    from harness.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(config.model.tokenizer or config.model.path)
    references = load_references(config.dataset.path)
    return [list(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in references]


def create_fake_backend(config: RunConfig) -> Any:
    """Factory used by harness.backends.base.create."""
    options = config.backend
    assert isinstance(options, FakeConfig)
    oracle = _oracle_tokens(config) if options.behaviour == "oracle" else None
    return FakeBackend(options, config.generation.max_new_tokens, oracle)
