"""Decode the responses and post-process predictions and references, on all cores.

Per sample, as the reference: ``tokenizer.batch_decode(ids, skip_special_tokens=True)`` (slow SentencePiece
decoding where the checkpoint has tokenizer.model: harness.tokenizer.reference_decoder), then for the
prediction and its reference ``"\\n".join(sent_tokenize(text.strip()))``. Large inputs are cut into
chunks handled by forked worker processes (the tokenizer and data are inherited, not pickled);
results come back in input order, so the outcome does not depend on the number of workers.

``clean_up_spaces`` (off unless a scorer asks; see ``fast_clean_up``): the reference's transformers 4.46
applies ``clean_up_tokenization`` after a fast tokenizer's decoding when the checkpoint's config sets
``clean_up_tokenization_spaces`` (Llama 3.1's does), while transformers 5 skips it for BPE tokenizers; then the
fast tokenizer decodes without it and its own ``clean_up_tokenization`` runs on each text, once.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.benchmarks.scoring.rouge import score_rouge
from harness.benchmarks.scoring.sentences import postprocess, sentence_splitter
from harness.tokenizer import reference_decoder

PARALLEL_MIN_SAMPLES = 256
CHUNKS_PER_WORKER = 8


@dataclass(frozen=True)
class _Job:
    tokenizer: Any
    tokens: Sequence[list[int]]
    references: Sequence[str]
    splitter: str
    python_rouge: bool  # score in the workers too (the rouge_score fallback is pure Python)
    clean_up_spaces: bool = False  # clean_up_tokenization after a fast tokenizer's decoding (fast_clean_up)


@dataclass(frozen=True)
class Texts:
    """Post-processed predictions and references, aligned; rouge filled when scored in workers."""

    predictions: list[str]
    references: list[str]
    rouge: dict[str, list[float]] | None


_JOB: _Job | None = None  # set in the parent just before forking; read by the workers


def _run_chunk(bounds: tuple[int, int]) -> tuple[list[str], list[str], dict[str, list[float]] | None]:
    assert _JOB is not None
    start, end = bounds
    if _JOB.clean_up_spaces:
        decoded = [_JOB.tokenizer.clean_up_tokenization(text) for text in _JOB.tokenizer.batch_decode(
            list(_JOB.tokens[start:end]), skip_special_tokens=True, clean_up_tokenization_spaces=False)]
    else:
        decoded = reference_decoder(_JOB.tokenizer).batch_decode(list(_JOB.tokens[start:end]),
                                                               skip_special_tokens=True)
    predictions = [postprocess(text, _JOB.splitter) for text in decoded]
    references = [postprocess(text, _JOB.splitter) for text in _JOB.references[start:end]]
    rouge = score_rouge(references, predictions, engine="python") if _JOB.python_rouge else None
    return predictions, references, rouge


def fast_clean_up(tokenizer: Any) -> bool:
    """True for a checkpoint decoded by its fast tokenizer whose config sets clean_up_tokenization_spaces."""
    configured = getattr(tokenizer, "clean_up_tokenization_spaces", False) is True
    return configured and reference_decoder(tokenizer) is tokenizer


def default_workers() -> int:
    """Worker processes to use: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _chunks(total: int, workers: int) -> list[tuple[int, int]]:
    pieces = max(1, min(total, workers * CHUNKS_PER_WORKER))
    step = -(-total // pieces)
    return [(start, min(total, start + step)) for start in range(0, total, step)]


def prepare_texts(tokenizer: Any, tokens: Sequence[list[int]], references: Sequence[str], *,
                  splitter: str, python_rouge: bool = False, workers: int | None = None,
                  on_progress: Callable[[int], None] | None = None, clean_up_spaces: bool = False) -> Texts:
    """Decode and post-process; references[i] belongs to tokens[i]."""
    global _JOB
    sentence_splitter(splitter)  # build (and validate) once in the parent, inherited by the workers
    workers = default_workers() if workers is None else max(1, workers)
    parallel = workers > 1 and len(tokens) >= PARALLEL_MIN_SAMPLES and _can_fork()
    chunks = _chunks(len(tokens), workers if parallel else 1) if tokens else []
    _JOB = _Job(tokenizer, tokens, references, splitter, python_rouge, clean_up_spaces)
    try:
        if parallel:
            with multiprocessing.get_context("fork").Pool(workers, initializer=_default_signals) as pool:
                results = _collect(pool.imap(_run_chunk, chunks), chunks, on_progress)
        else:
            results = _collect(map(_run_chunk, chunks), chunks, on_progress)
    finally:
        _JOB = None
    return _merge(results, python_rouge)


def _default_signals() -> None:
    """In a worker: SIGTERM kills quietly (the pool terminates its workers with it when scoring ends)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _collect(results: Any, chunks: list[tuple[int, int]],
             on_progress: Callable[[int], None] | None) -> list[Any]:
    collected = []
    for (start, end), result in zip(chunks, results, strict=True):
        collected.append(result)
        if on_progress is not None:
            on_progress(end - start)
    return collected


def _merge(results: list[Any], python_rouge: bool) -> Texts:
    predictions: list[str] = []
    references: list[str] = []
    rouge: dict[str, list[float]] | None = {} if python_rouge else None
    for preds, refs, scores in results:
        predictions.extend(preds)
        references.extend(refs)
        if rouge is not None:
            for kind, values in scores.items():
                rouge.setdefault(kind, []).extend(values)
    return Texts(predictions, references, rouge)
