"""StaticDecoder and the hf backend on a CUDA GPU: graph replay, agreement with generate, streaming, two GPUs.

Run on the device machine: ``python -m pytest -m gpu tests/gpu``. Never in CI (no GPU there).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from harness.backends.hf.decode import StaticDecoder
from harness.backends.sampling import SamplingSpec
from harness.types import GenerationRequest
from tests.unit.harness.backends.sinks import PerRequestSink

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

VOCAB = 512


def small_llama(device: str, dtype: torch.dtype, vocab: int = VOCAB) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=256, intermediate_size=512, num_hidden_layers=3,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    with torch.device(device):
        return LlamaForCausalLM._from_config(config, dtype=dtype).eval()


def spec(max_new: int, eos: int, min_new: int = 1) -> SamplingSpec:
    return SamplingSpec(max_new_tokens=max_new, min_new_tokens=min_new, greedy=True, temperature=0.0, top_k=0,
                        top_p=1.0, num_beams=1, repetition_penalty=1.0, presence_penalty=0.0, length_penalty=1.0,
                        early_stopping=True, eos_token_id=eos, pad_token_id=eos if eos < VOCAB else 0)


def prompts(lengths: Sequence[int], seed: int = 1) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def generate_reference(model: LlamaForCausalLM, batch: list[list[int]], sampling: SamplingSpec) -> list[list[int]]:
    width = max(len(p) for p in batch)
    ids = torch.tensor([[sampling.pad_token_id] * (width - len(p)) + p for p in batch], device=model.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=model.device)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                             max_new_tokens=sampling.max_new_tokens, min_new_tokens=sampling.min_new_tokens,
                             eos_token_id=sampling.eos_token_id, pad_token_id=sampling.pad_token_id)
    eos = sampling.eos_token_id
    return [r[:r.index(eos) + 1] if eos in r else r for r in out[:, width:].tolist()]


def run(decoder: StaticDecoder, batch: list[list[int]]) -> list[list[int]]:
    """The decoder's token matrix as lists, each row cut after its first EOS (as the SUT does)."""
    eos = decoder.spec.eos_token_id
    return [row[:row.index(eos) + 1] if eos in row else row for row in decoder.generate(batch).tolist()]


def test_graph_replay_gives_exactly_the_eager_tokens() -> None:
    model = small_llama("cuda", torch.bfloat16)
    batch = prompts([70, 3, 130, 1, 45, 9])
    free = run(StaticDecoder(model, spec(100, VOCAB + 5), 8, use_graphs=False), batch)
    eos = free[2][10]  # row 2 stops at its 11th token at the latest
    eager = run(StaticDecoder(model, spec(100, eos), 8, use_graphs=False), batch)
    graphs = StaticDecoder(model, spec(100, eos), 8, use_graphs=True)
    assert run(graphs, batch) == eager
    assert graphs._graphs, "no CUDA graph was captured"
    assert run(graphs, batch) == eager  # replaying captured graphs again
    assert len(eager[2]) <= 11 and eager[2][-1] == eos


def test_warm_up_captures_every_graph_the_batches_need_and_changes_no_token() -> None:
    model = small_llama("cuda", torch.bfloat16)
    batch = prompts([70, 3, 130, 1, 45, 9])
    eager = run(StaticDecoder(model, spec(100, VOCAB + 5), 8, use_graphs=False), batch)
    warmed = StaticDecoder(model, spec(100, VOCAB + 5), 8, use_graphs=True)
    captured = warmed.warm_up(longest_prompt=130, batch_sizes=[6])
    assert captured == len(warmed._graphs) > 0 and warmed.capacity >= 230
    graphs = dict(warmed._graphs)
    assert run(warmed, batch) == eager
    assert warmed._graphs == graphs, "a graph was captured during generation after the warm-up"
    assert warmed.warm_up(longest_prompt=130, batch_sizes=[6]) == 0  # nothing left to capture


def test_float32_graphs_match_transformers_generate() -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = small_llama("cuda", torch.float32)
    batch = prompts([33, 7, 90, 2], seed=3)
    sampling = spec(48, VOCAB + 5)
    assert run(StaticDecoder(model, sampling, 4), batch) == generate_reference(model, batch, sampling)


class _Sink(PerRequestSink):
    eos_token_id = 2

    def __init__(self, expected: int) -> None:
        self.events: list[tuple[str, int, list[int]]] = []
        self.done = threading.Event()
        self.expected = expected

    def first_token(self, request_id: int, token_id: int) -> None:
        self.events.append(("first", request_id, [token_id]))

    def complete(self, request_id: int, token_ids: Sequence[int]) -> None:
        self.events.append(("complete", request_id, list(token_ids)))
        if sum(e[0] == "complete" for e in self.events) == self.expected:
            self.done.set()

    def fail(self, request_id: int, error: BaseException) -> None:
        self.events.append(("fail", request_id, [str(error)]))
        self.done.set()


def _serve(tmp_path: Path, decode: str, batch: list[list[int]]) -> tuple[str, list[tuple[str, int, list[int]]]]:
    from harness.config import build_config
    from harness.distributed.replicas import create_backend
    from harness.tokenizer import load_tokenizer

    tokenizer = os.environ.get("BENCH_TOKENIZER")
    if not tokenizer:
        pytest.skip("set BENCH_TOKENIZER to a saved tokenizer directory (eos id 2)")
    model_dir = tmp_path / "model"
    if not model_dir.exists():
        small_llama("cpu", torch.float32, vocab=49152).save_pretrained(model_dir)
    config = build_config({"scenario": "Server", "model": {"path": str(model_dir), "tokenizer": tokenizer},
                           "generation": {"max_new_tokens": 24},
                           "backend": {"kind": "hf", "device": "cuda", "dtype": "float32", "decode": decode,
                                       "max_batch_size": 4, "batch_wait_ms": 200}})
    backend = create_backend(config, load_tokenizer(tokenizer))
    sink = _Sink(len(batch))
    info = backend.start(sink)
    try:
        backend.submit([GenerationRequest(i, i, tuple(p), True) for i, p in enumerate(batch)])
        assert sink.done.wait(120)
    finally:
        backend.stop()
    return info.name, sink.events


def test_backend_streams_first_tokens_and_agrees_with_generate(tmp_path: Path) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    batch = prompts([12, 40, 5], seed=5)
    name, events = _serve(tmp_path, "auto", batch)
    assert "static decode" in name
    _, reference = _serve(tmp_path, "generate", batch)
    finals = {rid: toks for kind, rid, toks in events if kind == "complete"}
    assert finals == {rid: toks for kind, rid, toks in reference if kind == "complete"}
    for rid, tokens in finals.items():
        firsts = [i for i, e in enumerate(events) if e[:2] == ("first", rid)]
        assert len(firsts) == 1 and events[firsts[0]][2] == tokens[:1]
        assert firsts[0] < events.index(("complete", rid, tokens))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_decode_concurrently_in_threads() -> None:
    batch = prompts([50, 8, 120], seed=7)
    models = [small_llama(f"cuda:{i}", torch.bfloat16) for i in range(2)]
    decoders = [StaticDecoder(m, spec(64, VOCAB + 5), 4) for m in models]
    results: dict[int, list[list[int]]] = {}

    def work(index: int) -> None:
        for _ in range(3):
            results[index] = run(decoders[index], batch)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for decoder in decoders:
        decoder.release()  # graphs must be destroyed on their own device, not in whatever is current here
    for index, model in enumerate(models):
        assert results[index] == run(StaticDecoder(model, spec(64, VOCAB + 5), 4, use_graphs=False), batch)
