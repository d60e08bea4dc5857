"""Loading the tokenizer that matches the model; slow SentencePiece decoding when tokenizer.model exists.

transformers 5 has no slow Llama tokenizer any more: it always builds the fast one, converting
``tokenizer.model`` when there is no ``tokenizer.json`` (that conversion reads the SentencePiece model
proto, hence the ``protobuf`` dependency). The MLCommons reference decodes with transformers 4.31's slow
``LlamaTokenizer`` (``use_fast=False``); `SentencePieceDecoding` reproduces exactly that decoding with the
``sentencepiece`` library, and the accuracy scorer uses it through `reference_decoder`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from harness.errors import EnvironmentProblem, InputError
from harness.model_files import ModelFiles, cache_root, force_offline, resolve_model

__all__ = ["SentencePieceDecoding", "cache_root", "eos_token_id", "extra_stop_ids", "load_tokenizer",
           "reference_decoder"]

SPM_FILE = "tokenizer.model"
_REFERENCE_DECODER = "harness_reference_decoder"  # attribute a loaded tokenizer carries when it has tokenizer.model


def _gguf_cache_dir(directory: str, gguf_file: str) -> Path:
    source = Path(directory) / gguf_file
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "tokenizers" / f"{Path(gguf_file).stem}-{key}"


def _from_gguf(directory: str, gguf_file: str, kwargs: dict[str, Any]) -> Any:
    """A GGUF tokenizer takes seconds to extract from the model file: extract once, keep it on disk."""
    from transformers import AutoTokenizer

    cached = _gguf_cache_dir(directory, gguf_file)
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(str(cached), **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=gguf_file, **kwargs)
    with contextlib.suppress(OSError):  # a read-only home only costs the next load its speed
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{cached.name}.", dir=cached.parent))
        tokenizer.save_pretrained(str(partial))
        try:
            partial.rename(cached)
        except OSError:  # another process won the race; its copy is identical
            shutil.rmtree(partial, ignore_errors=True)
    return tokenizer


class SentencePieceDecoding:
    """Decoding exactly as transformers 4.31's slow LlamaTokenizer (the MLCommons reference's), with sentencepiece.

    ``PreTrainedTokenizer._decode`` there: ids of special tokens are dropped (skip_special_tokens), ids beyond
    the SentencePiece vocabulary that are added tokens become text of their own, every other id becomes its
    piece; runs of pieces are decoded by ``sp_model.decode`` (byte-fallback pieces become their UTF-8 text),
    the parts are joined with spaces (``spaces_between_special_tokens=True``), and
    ``clean_up_tokenization`` runs only when the checkpoint's config asks for it (Llama 2's does not).
    """

    def __init__(self, model_file: Path, tokenizer: Any) -> None:
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
        self.pieces = self.processor.get_piece_size()
        self.special_ids = frozenset(int(i) for i in tokenizer.all_special_ids)
        self.added = {int(i): str(token) for i, token in tokenizer.added_tokens_decoder.items()
                      if int(i) >= self.pieces}
        self.clean_up = _config_flag(model_file.parent, "clean_up_tokenization_spaces")  # LlamaTokenizer: False
        self._clean = tokenizer.clean_up_tokenization

    def decode(self, token_ids: Any, skip_special_tokens: bool = False) -> str:
        """One sequence of ids to text."""
        parts: list[str] = []
        run: list[int] = []
        for raw in token_ids:
            index = int(raw)
            if skip_special_tokens and index in self.special_ids:
                continue
            if index in self.added:
                if run:
                    parts.append(self.processor.decode(self.processor.id_to_piece(run)))
                    run = []
                parts.append(self.added[index])
            else:
                run.append(index)
        if run:
            parts.append(self.processor.decode(self.processor.id_to_piece(run)))
        text = " ".join(parts)
        return self._clean(text) if self.clean_up else text

    def batch_decode(self, sequences: Any, skip_special_tokens: bool = False) -> list[str]:
        """Each sequence of ids to text."""
        return [self.decode(ids, skip_special_tokens) for ids in sequences]


def _config_flag(directory: Path, key: str) -> bool:
    """A boolean of the checkpoint's tokenizer_config.json (False when absent or unreadable)."""
    import json

    try:
        config = json.loads((directory / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get(key) is True


def reference_decoder(tokenizer: Any) -> Any:
    """What accuracy decoding calls batch_decode on: the SentencePiece decoding, else the tokenizer itself."""
    return getattr(tokenizer, _REFERENCE_DECODER, None) or tokenizer


def _needs_protobuf(directory: str) -> None:
    """tokenizer.model without tokenizer.json: transformers converts it, which needs protobuf (else it asks
    for tiktoken, which is misleading)."""
    folder = Path(directory)
    if (folder / SPM_FILE).is_file() and not (folder / "tokenizer.json").is_file():
        try:
            import google.protobuf  # noqa: F401
        except ImportError:
            raise EnvironmentProblem(
                f"{folder / SPM_FILE} is a SentencePiece tokenizer without tokenizer.json; transformers needs the "
                "protobuf package to read it, and it is not installed",
                hint="pip install 'protobuf>=4' (a dependency of mlperf-llm-harness; reinstall it)",
            ) from None


@lru_cache(maxsize=8)
def _load(directory: str, gguf_file: str | None) -> Any:
    force_offline()
    from transformers import AutoTokenizer

    kwargs: dict[str, Any] = {"model_max_length": 2048, "padding_side": "left"}
    try:
        if gguf_file:
            return _from_gguf(directory, gguf_file, kwargs)
        _needs_protobuf(directory)
        tokenizer = AutoTokenizer.from_pretrained(directory, **kwargs)
        if (Path(directory) / SPM_FILE).is_file():
            setattr(tokenizer, _REFERENCE_DECODER, SentencePieceDecoding(Path(directory) / SPM_FILE, tokenizer))
        return tokenizer
    except (OSError, ValueError, RuntimeError) as err:
        raise InputError(
            f"cannot load a tokenizer from {directory}{'/' + gguf_file if gguf_file else ''}: "
            f"{str(err).splitlines()[0]}",
            hint="point model.tokenizer (or --tokenizer) at a checkpoint directory with tokenizer files",
        ) from None


def load_tokenizer(path: str | None) -> Any:
    """Tokenizer for a model path (None = embedded SmolLM2), with SentencePiece decoding for accuracy when
    tokenizer.model is present.

    The MLCommons reference decodes with ``use_fast=False``, i.e. the SentencePiece tokenizer, whenever
    the checkpoint ships ``tokenizer.model`` (Llama 2 does): `reference_decoder` gives that decoding.
    Encoding (prompts of the smoke set, oracle answers) uses the transformers tokenizer.
    """
    files: ModelFiles = resolve_model(path)
    tokenizer = _load(str(files.directory), files.gguf_file)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


_GENERATION_CONFIG_BYTES = 1 << 20


def extra_stop_ids(model_path: str | None, eos: int, override: list[int] | None = None) -> tuple[int, ...]:
    """Ids besides EOS that end an answer: the override, else the eos_token_id list of the checkpoint's
    generation_config.json (Llama 3.1 Instruct: <|end_of_text|>, <|eom_id|>, <|eot_id|>), read as data."""
    if override is not None:
        return tuple(dict.fromkeys(int(i) for i in override if int(i) != eos))
    if model_path is None:
        return ()
    try:
        directory = resolve_model(model_path).directory
    except (InputError, OSError):
        return ()
    found = directory / "generation_config.json"
    if not found.is_file():
        return ()
    try:
        text = found.read_text() if found.stat().st_size <= _GENERATION_CONFIG_BYTES else ""
        ids = json.loads(text).get("eos_token_id") if text else None
    except (OSError, ValueError, AttributeError) as err:
        raise InputError(f"{found} cannot be read as JSON ({err})",
                         hint="fix the checkpoint's generation_config.json or set model.stop_token_ids") from None
    values = ids if isinstance(ids, list) else [ids] if ids is not None else []
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
        raise InputError(f"{found}: eos_token_id is {ids!r}; expected a token id or a list of them",
                         hint="fix the checkpoint's generation_config.json or set model.stop_token_ids")
    return tuple(dict.fromkeys(v for v in values if v != eos))


def eos_token_id(tokenizer: Any, override: int | None = None) -> int:
    """The EOS id to trim at: the override, else the tokenizer's."""
    if override is not None:
        return override
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("the tokenizer defines no EOS token", hint="set model.eos_token_id")
    return int(eos)
