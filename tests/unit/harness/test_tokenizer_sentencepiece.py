"""A checkpoint whose tokenizer is only tokenizer.model (SentencePiece) loads, and accuracy decoding is the
reference's: transformers 4.31's slow LlamaTokenizer, i.e. sentencepiece decoding of the non-special pieces."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
import sentencepiece

from harness.benchmarks.scoring.sentences import postprocess
from harness.benchmarks.scoring.texts import prepare_texts
from harness.errors import EnvironmentProblem
from harness.tokenizer import _load, load_tokenizer, reference_decoder

CORPUS = ["The quick brown fox jumps over the lazy dog.", "Hello world, this is a test of SentencePiece.",
          "MLPerf inference runs Llama two seventy B. It is scored with ROUGE.",
          "Numbers 12345 and symbols !?; also émigré café naïve."]


@pytest.fixture()
def spm_checkpoint(tmp_path: Path) -> Path:
    """A Llama-style checkpoint folder with only tokenizer.model + tokenizer_config.json (trained here)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 40))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp_path / "tok"), vocab_size=400, model_type="bpe", unk_id=0,
        bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=1.0, minloglevel=2)
    checkpoint = tmp_path / "llama-spm"
    checkpoint.mkdir()
    (tmp_path / "tok.model").rename(checkpoint / "tokenizer.model")
    (checkpoint / "tokenizer_config.json").write_text(json.dumps({  # as Llama-2-70b-chat-hf's
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "legacy": False, "model_max_length": 1000000000000000019884624838656, "sp_model_kwargs": {}}))
    _load.cache_clear()
    yield checkpoint
    _load.cache_clear()


def _reference(processor: sentencepiece.SentencePieceProcessor, ids: list[int]) -> str:
    """transformers 4.31 slow LlamaTokenizer.batch_decode(skip_special_tokens=True) for a vocabulary without
    added tokens: drop the special ids (unk, bos, eos), sp_model.decode the remaining pieces."""
    return processor.decode([processor.id_to_piece(i) for i in ids if i not in (0, 1, 2)])


def test_a_tokenizer_model_only_checkpoint_loads_and_encodes_as_sentencepiece(spm_checkpoint: Path) -> None:
    assert sorted(p.name for p in spm_checkpoint.iterdir()) == ["tokenizer.model", "tokenizer_config.json"]
    tokenizer = load_tokenizer(str(spm_checkpoint))
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_checkpoint / "tokenizer.model"))
    for text in [*CORPUS, "naïve ☃ snow"]:
        assert tokenizer(text)["input_ids"] == [1, *processor.encode(text)]
        assert tokenizer(text, add_special_tokens=False)["input_ids"] == processor.encode(text)
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 2)
    assert len(tokenizer) == 400


def test_accuracy_decoding_is_the_reference_slow_sentencepiece_decoding(spm_checkpoint: Path) -> None:
    tokenizer = load_tokenizer(str(spm_checkpoint))
    decoder = reference_decoder(tokenizer)
    assert decoder is not tokenizer
    processor = sentencepiece.SentencePieceProcessor(model_file=str(spm_checkpoint / "tokenizer.model"))
    snowman = processor.encode("naïve ☃ snow")  # ☃ is three byte-fallback pieces
    assert [processor.id_to_piece(i) for i in snowman].count("<0xE2>") == 1
    assert decoder.decode([1, *snowman, 2], skip_special_tokens=True) == "naïve ☃ snow"
    lone_byte = [processor.piece_to_id("<0xE2>"), *processor.encode("ok")]
    rng = random.Random(7)
    sequences = [[1, *processor.encode(text), 2] for text in CORPUS] + [snowman, lone_byte, [2, 2], []]
    sequences += [[rng.randrange(400) for _ in range(rng.randrange(1, 60))] for _ in range(200)]
    expected = [_reference(processor, ids) for ids in sequences]
    assert decoder.batch_decode(sequences, skip_special_tokens=True) == expected
    # transformers 5's converted fast tokenizer alone decodes byte-fallback runs differently (not the reference)
    fast = tokenizer.batch_decode(sequences, skip_special_tokens=True)
    assert any(f != e for f, e in zip(fast, expected, strict=True))
    # The scorer decodes through it, serially and on several workers alike.
    references = [CORPUS[i % len(CORPUS)] for i in range(len(sequences))]
    for workers in (1, 2):
        texts = prepare_texts(tokenizer, sequences, references, splitter="nltk-3.8", workers=workers)
        assert texts.predictions == [postprocess(text, "nltk-3.8") for text in expected]


def test_without_protobuf_the_error_says_so_instead_of_asking_for_tiktoken(spm_checkpoint: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.protobuf", None)
    with pytest.raises(EnvironmentProblem, match="needs the protobuf package") as caught:
        load_tokenizer(str(spm_checkpoint))
    assert "tokenizer.model" in caught.value.message and "pip install" in (caught.value.hint or "")
