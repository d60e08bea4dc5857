"""StaticDecoder on the CPU (eager steps): token ids equal transformers' greedy generate on tiny random Llamas."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from harness.backends.hf import decode as hf_decode
from harness.backends.hf.decode import StaticDecoder, unsupported_reason
from harness.backends.sampling import SamplingSpec

VOCAB = 96
NO_EOS = VOCAB + 1  # an id the model can never produce


@pytest.fixture(autouse=True)
def one_thread() -> object:
    """Tiny models run fastest (and least disturbed on shared CPUs) on one intra-op thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny_llama(heads: int = 4, kv_heads: int = 2, tie: bool = False, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=512,
                         tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    return LlamaForCausalLM(config).eval()


def spec(max_new: int, eos: int, min_new: int = 1, pad: int = 0) -> SamplingSpec:
    return SamplingSpec(max_new_tokens=max_new, min_new_tokens=min_new, greedy=True, temperature=0.0, top_k=0,
                        top_p=1.0, num_beams=1, repetition_penalty=1.0, presence_penalty=0.0, length_penalty=1.0,
                        early_stopping=True, eos_token_id=eos, pad_token_id=pad)


def prompts(lengths: list[int], seed: int = 1) -> list[list[int]]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randint(3, VOCAB, (n,), generator=generator).tolist() for n in lengths]


def reference(model: LlamaForCausalLM, batch: list[list[int]], sampling: SamplingSpec) -> list[list[int]]:
    """transformers' greedy generate on the left-padded batch, each row cut after its first EOS."""
    width = max(len(p) for p in batch)
    ids = torch.tensor([[sampling.pad_token_id] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, num_beams=1,
                             max_new_tokens=sampling.max_new_tokens, min_new_tokens=sampling.min_new_tokens,
                             eos_token_id=sampling.eos_token_id, pad_token_id=sampling.pad_token_id)
    rows = out[:, width:].tolist()
    eos = sampling.eos_token_id
    return [row[:row.index(eos) + 1] if eos in row else row for row in rows]


def run(decoder: StaticDecoder, batch: list[list[int]], **kwargs: object) -> list[list[int]]:
    """The decoder's token matrix as lists, each row cut after its first EOS (as the SUT does)."""
    rows = decoder.generate(batch, **kwargs)  # type: ignore[arg-type]
    assert rows.dtype.name == "int32" and rows.shape[0] == len(batch)
    eos = decoder.spec.eos_token_id
    return [row[:row.index(eos) + 1] if eos in row else row for row in rows.tolist()]


@pytest.mark.parametrize(("heads", "kv_heads", "tie"), [(4, 2, False), (4, 4, True), (4, 1, False)],
                         ids=["gqa", "mha-tied", "mqa"])
def test_left_padded_batch_equals_generate(heads: int, kv_heads: int, tie: bool) -> None:
    model = tiny_llama(heads, kv_heads, tie)
    batch = prompts([9, 3, 17, 1, 6])
    sampling = spec(24, NO_EOS)
    expected = reference(model, batch, sampling)
    got = run(StaticDecoder(model, sampling, max_batch_size=8), batch)
    assert got == expected
    assert all(len(row) == 24 for row in got)


def test_early_eos_rows_are_cut_and_match_generate() -> None:
    model = tiny_llama()
    batch = prompts([5, 11, 8, 2], seed=3)
    free_run = reference(model, batch, spec(16, NO_EOS))
    eos = free_run[0][3]  # row 0 emits this id as its 4th token: make it the EOS
    sampling = spec(16, eos, pad=eos)
    expected = reference(model, batch, sampling)
    got = run(StaticDecoder(model, sampling, max_batch_size=4), batch)
    assert got == expected
    assert len(got[0]) <= 4 and got[0][-1] == eos


def test_eos_is_banned_before_min_new_tokens() -> None:
    model = tiny_llama(seed=4)
    batch = prompts([6, 6, 4], seed=5)
    eos = reference(model, batch, spec(4, NO_EOS))[0][0]  # row 0 would stop at once
    sampling = spec(12, eos, min_new=5, pad=eos)
    got = run(StaticDecoder(model, sampling, max_batch_size=4), batch)
    assert got == reference(model, batch, sampling)
    assert len(got[0]) >= 5 and eos not in got[0][:4]


def test_all_rows_finished_stops_decoding_early() -> None:
    model = tiny_llama(seed=6)
    batch = prompts([7], seed=7)
    eos = reference(model, batch, spec(4, NO_EOS))[0][1]
    decoder = StaticDecoder(model, spec(200, eos, pad=eos), max_batch_size=2)
    got = run(decoder, batch)
    assert got == reference(model, batch, spec(200, eos, pad=eos))
    steps_run = int(decoder.state.count)
    assert steps_run <= 2 + hf_decode.CHECK_EVERY, "decoding went on after every row had finished"


def test_cache_grows_for_longer_batches_and_stays_correct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hf_decode, "SLOT_BUCKET", 8)
    model = tiny_llama(seed=8)
    sampling = spec(10, NO_EOS)
    decoder = StaticDecoder(model, sampling, max_batch_size=4)
    short, long = prompts([3, 2], seed=9), prompts([40, 13, 29], seed=10)
    assert run(decoder, short) == reference(model, short, sampling)
    small = decoder.capacity
    assert run(decoder, long) == reference(model, long, sampling)
    assert decoder.capacity > small
    assert run(decoder, short) == reference(model, short, sampling)


def test_first_tokens_are_reported_before_decoding_and_agree() -> None:
    model = tiny_llama(seed=11)
    batch = prompts([4, 9, 2], seed=12)
    seen: list[list[int]] = []
    got = run(StaticDecoder(model, spec(8, NO_EOS), max_batch_size=4), batch, on_first=seen.append)
    assert seen == [[row[0] for row in got]]


def test_fusing_keeps_the_transformers_model_working() -> None:
    model = tiny_llama(seed=13)
    batch = prompts([5, 8], seed=14)
    sampling = spec(6, NO_EOS)
    before = reference(model, batch, sampling)
    StaticDecoder(model, sampling, max_batch_size=2)
    assert reference(model, batch, sampling) == before
    attn = model.model.layers[0].self_attn
    assert attn.k_proj.weight.untyped_storage().data_ptr() == attn.q_proj.weight.untyped_storage().data_ptr()


def test_a_pad_id_outside_the_vocab_is_never_fed_to_the_model() -> None:
    model = tiny_llama(seed=15)
    batch = prompts([6, 2, 9], seed=16)  # 3 prompts: the batch bucket adds a filler row
    sampling = spec(12, NO_EOS, pad=NO_EOS)
    got = run(StaticDecoder(model, sampling, max_batch_size=4), batch)
    assert got == reference(model, batch, spec(12, NO_EOS))


def test_batch_larger_than_max_is_refused() -> None:
    decoder = StaticDecoder(tiny_llama(), spec(4, NO_EOS), max_batch_size=2)
    with pytest.raises(ValueError, match="expected 1 to 2"):
        run(decoder, prompts([3, 3, 3]))


def test_unsupported_models_and_sampling_are_named() -> None:
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64))
    assert "model_type is 'gpt2'" in (unsupported_reason(gpt2, spec(4, 2)) or "")
    llama = tiny_llama()
    assert unsupported_reason(llama, spec(4, 2)) is None
    assert "greedy" in (unsupported_reason(llama, replace(spec(4, 2), greedy=False, temperature=0.7)) or "")
    assert "penalt" in (unsupported_reason(llama, replace(spec(4, 2), repetition_penalty=1.1)) or "")
    with pytest.raises(ValueError, match="gpt2"):
        StaticDecoder(gpt2, spec(4, 2), max_batch_size=2)


def test_warm_up_sizes_the_cache_once_for_the_longest_prompt() -> None:
    model = tiny_llama(seed=8)
    sampling = spec(10, NO_EOS)
    decoder = StaticDecoder(model, sampling, max_batch_size=4)
    assert decoder.warm_up(longest_prompt=40, batch_sizes=[4]) == 0  # eager on the CPU: nothing to capture
    sized = decoder.capacity
    assert sized >= 50
    batch = prompts([40, 13, 29], seed=10)
    assert run(decoder, batch) == reference(model, batch, sampling)
    assert decoder.capacity == sized, "the cache was reallocated after the warm-up"
