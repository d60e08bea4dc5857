"""HfBackend on the CPU: decode auto keeps transformers generate(); decode static gives the same tokens."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from harness.backends.hf.backend import HfBackend, cpu_threads_per_rank
from harness.config import RunConfig, build_config
from harness.distributed.replicas import backend_setup, create_backend
from harness.errors import ConfigError
from harness.tokenizer import load_tokenizer
from harness.types import GenerationRequest
from tests.unit.harness.backends.sinks import PerRequestSink

VOCAB = 64


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama checkpoint with a word-level tokenizer (EOS id 2) saved side by side."""
    path = tmp_path_factory.mktemp("tiny-llama")
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2} | {f"w{i}": i for i in range(3, VOCAB)}
    fast = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(vocab, unk_token="<unk>")),
                                   unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<unk>")
    fast.save_pretrained(path)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


class _Sink(PerRequestSink):
    eos_token_id = 2

    def __init__(self, expected: int) -> None:
        self.finals: dict[int, list[int]] = {}
        self.firsts: dict[int, int] = {}
        self.done = threading.Event()
        self.expected = expected

    def first_token(self, request_id: int, token_id: int) -> None:
        self.firsts[request_id] = token_id

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self.finals[request_id] = list(token_ids)
        if len(self.finals) == self.expected:
            self.done.set()

    def fail(self, request_id: int, error: BaseException) -> None:
        raise AssertionError(f"request {request_id} failed: {error}")


def serve(model_dir: Path, decode: str, scenario: str = "Offline") -> tuple[str, _Sink, str | None]:
    config = build_config({"scenario": scenario, "model": {"path": str(model_dir)},
                           "generation": {"max_new_tokens": 12},
                           "backend": {"kind": "hf", "device": "cpu", "decode": decode, "max_batch_size": 4,
                                       "threads": 1, "batch_wait_ms": 50}})
    backend = create_backend(config, load_tokenizer(str(model_dir)))
    assert isinstance(backend, HfBackend)
    generator = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in (5, 9, 2)]
    sink = _Sink(len(prompts))
    info = backend.start(sink)
    warm = backend.warm_up(9, [4])
    try:
        backend.submit([GenerationRequest(i, i, tuple(p), scenario != "Offline") for i, p in enumerate(prompts)])
        assert sink.done.wait(120)
    finally:
        backend.stop()
    return info.name, sink, warm


def test_cpu_auto_uses_generate_and_static_gives_the_same_tokens(model_dir: Path) -> None:
    auto_name, auto, auto_warm = serve(model_dir, "auto")
    static_name, static, static_warm = serve(model_dir, "static", scenario="Server")
    assert auto_name.endswith("generate)") and static_name.endswith("static decode)")
    assert auto_warm is None  # generate() has nothing to prepare
    assert static_warm is not None and static_warm.startswith("KV cache for 64 slots, 0 decode graphs")
    assert static.finals == auto.finals and len(auto.finals) == 3
    assert static.firsts == {rid: tokens[0] for rid, tokens in static.finals.items()}


def test_static_refused_with_sampling(model_dir: Path) -> None:
    config = build_config({"model": {"path": str(model_dir)}, "generation": {"temperature": 0.7},
                           "backend": {"kind": "hf", "device": "cpu", "decode": "static"}})
    with pytest.raises(ConfigError, match=r"backend\.decode is 'static', but only greedy"):
        _hf(config, model_dir).start(_Sink(0))


def _hf(config: RunConfig, model_dir: Path) -> HfBackend:
    assert config.backend.kind == "hf"
    return HfBackend(config.backend, backend_setup(config, load_tokenizer(str(model_dir))))


def test_threads_are_divided_among_local_ranks() -> None:
    cores = len(os.sched_getaffinity(0))
    assert cpu_threads_per_rank({}) == cores
    assert cpu_threads_per_rank({"OMPI_COMM_WORLD_LOCAL_SIZE": str(cores * 2)}) == 1
    assert cpu_threads_per_rank({"SLURM_STEP_TASKS_PER_NODE": "1(x2)"}) == cores


class _CancelSink(PerRequestSink):
    eos_token_id = 2

    def __init__(self, expected: int) -> None:
        self.started = threading.Event()
        self.failed: dict[int, str] = {}
        self.completed: list[int] = []
        self.ended = threading.Event()
        self.expected = expected

    def first_token(self, request_id: int, token_id: int) -> None:
        self.started.set()

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self.completed.append(request_id)
        self._check()

    def fail(self, request_id: int, error: BaseException) -> None:
        self.failed[request_id] = str(error)
        self._check()

    def _check(self) -> None:
        if len(self.failed) + len(self.completed) == self.expected:
            self.ended.set()


CANCEL_BOUND_S = 1.0
LONG_NEW = 16000


@pytest.fixture(scope="module")
def long_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model_dir's tokenizer with a random Llama that has room for LONG_NEW generated tokens."""
    path = tmp_path_factory.mktemp("tiny-llama-long")
    for name in os.listdir(model_dir):
        if name.startswith(("tokenizer", "special_tokens")):
            (path / name).write_bytes((model_dir / name).read_bytes())
    torch.manual_seed(0)
    # wide and deep enough that one decode step costs real compute on any CPU, so the uncancelled batch runs
    # far past CANCEL_BOUND_S on a fast machine too (the 64-wide model's full batch took only 4.6 s on CI)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                         num_attention_heads=4, num_key_value_heads=2, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, max_position_embeddings=LONG_NEW + 64)
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def _forced(model_dir: Path, decode: str, new_tokens: int) -> HfBackend:
    config = build_config({"scenario": "Server", "model": {"path": str(model_dir)},
                           "generation": {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens},
                           "backend": {"kind": "hf", "device": "cpu", "decode": decode, "max_batch_size": 4,
                                       "threads": 1, "batch_wait_ms": 0}})
    backend = create_backend(config, load_tokenizer(str(model_dir)))
    assert isinstance(backend, HfBackend)
    return backend


@pytest.mark.parametrize("decode", ["generate", "static"])
def test_cancel_all_stops_a_long_batch_inside_generate_promptly(long_model_dir: Path, decode: str) -> None:
    """A batch of LONG_NEW forced tokens per row is cut after its current step: every request fails 'cancelled'
    within CANCEL_BOUND_S of cancel_all, while the whole batch would take many times longer."""
    prompts = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14], [15]]
    probe = _forced(long_model_dir, decode, 300)
    probe.start(_CancelSink(0))
    try:
        started = time.monotonic()
        assert probe.generate(prompts).shape == (4, 300)
        full_batch_s = (time.monotonic() - started) * LONG_NEW / 300  # a lower bound: attention grows with length
    finally:
        probe.stop()
    assert full_batch_s > 10 * CANCEL_BOUND_S, full_batch_s  # uncancelled, it would run far past the bound
    backend = _forced(long_model_dir, decode, LONG_NEW)
    sink = _CancelSink(len(prompts))
    backend.start(sink)
    try:
        backend.submit([GenerationRequest(i, i, tuple(p), True) for i, p in enumerate(prompts)])
        assert sink.started.wait(60)  # the batch is inside generate
        time.sleep(0.2)
        cancelled_at = time.monotonic()
        backend.cancel_all()
        assert sink.ended.wait(60)
        took = time.monotonic() - cancelled_at
    finally:
        backend.stop()
    assert took < CANCEL_BOUND_S, f"{took:.2f} s after cancel_all (the whole batch takes ~{full_batch_s:.0f} s)"
    assert sink.completed == [] and sink.failed == dict.fromkeys(range(len(prompts)), "cancelled")
