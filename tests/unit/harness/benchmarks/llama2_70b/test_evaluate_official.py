"""`harness evaluate --benchmark llama2-70b-99.9` prints exactly what the OFFICIAL evaluate-accuracy.py prints.

The official script is language/llama2-70b/evaluate-accuracy.py of the mlcommons/inference mirror
(``git --git-dir MIRROR show REV:language/llama2-70b/evaluate-accuracy.py``). It has two versions across the rounds,
and both are run: ``v4.0`` (the same file at v4.1: one ``evaluate.load("rouge")`` and one ``compute``) and ``HEAD``
(the same file at v5.0, v5.0.1, v5.1 and v5.1.1: ROUGE in a ``multiprocessing.Pool`` of ``cpu_count()`` workers on
consecutive chunks, each loading the metric; also ``nltk.download("punkt_tab")``); a test checks that every round
tag from v4.0 on holds one of the two. Both versions print ``\\nResults\\n\\n{rouge1, rouge2, rougeL, rougeLsum,
gen_len, gen_num, gen_tok_len, tokens_per_sample}``.

Its own ``main()`` runs with ``sys.argv`` = ``--checkpoint-path <folder> --mlperf-accuracy-file <log>
--dataset-file <pickle> --dtype int32|int64|float``, in a separate process, on a generated set: a SentencePiece
tokenizer trained here (BPE with byte fallback; tokenizer.model and a Llama-2-chat-style tokenizer_config.json,
LlamaTokenizer, legacy false), an OpenOrca-schema pickle (object columns input, tok_input, output, readable by the
pandas 2 of the reference's time) with an empty and a blank reference, and an accuracy log with a qsl_idx logged
three times and another twice (the first entry wins), trailing EOS runs, an EOS-only and an empty buffer, BOS and
unk ids inside answers, a leading lone "▁" piece, unicode through byte fallback, an answer cut off inside a UTF-8
character (no EOS), a stray continuation byte, a very long answer and a missing sample. Offline
(tests/unit/harness/benchmarks/official_script.py says how): ``nltk.download`` is a no-op and nltk 3.8.1's
``sent_tokenize`` finds ``tokenizers/punkt/english.pickle`` in nltk's resource cache, built from the official
punkt_tab English files in shared/reference-data/nltk_data; ``evaluate.load("rouge")`` loads evaluate's
metrics/rouge/rouge.py at tag v0.4.0 from the huggingface/evaluate mirror; the Hugging Face libraries run with
HF_HUB_OFFLINE etc. and a fresh HF_HOME. The HEAD version's pool workers are forked and inherit all of it.

Two halves:

- pinned: the script in a Python with the reference's libraries, found as the first existing of
  ``<checkout>/.venv-reference-llama2/bin/python`` then $LLAMA2_REFERENCE_PYTHON (language/llama2-70b/README.md's
  pins: transformers 4.31.0's slow LlamaTokenizer, sentencepiece 0.1.99, evaluate 0.4.0, nltk 3.8.1, rouge-score
  0.1.2; numpy 1, which prints plain numbers) and ``<checkout>/.venv-reference/bin/python`` then
  $LLAMA31_REFERENCE_PYTHON then /tmp/ref-l31/bin/python (language/llama3.1-8b/requirements.txt's: transformers
  4.46.2; numpy 2, which prints ``np.float64(...)``). scripts/install-reference-scorers.sh builds both. A missing
  or wrongly pinned Python, or a missing mirror, is a skip that says so.
- stand-in: the script in this Python, with ``evaluate`` replaced by a stand-in of evaluate 0.4.0's
  ``Rouge._compute`` (a ``rouge_score`` RougeScorer of the four types with use_stemmer, one ``score`` per pair,
  F-measure lists) and ``AutoTokenizer`` by a stand-in of the pinned slow LlamaTokenizer's decoding (special ids
  dropped, sentencepiece decoding of the rest; the pinned half shows 4.31.0 and 4.46.2 decode so here), for
  int32, int64 and float logs. It needs only the inference mirror and the punkt_tab files.

``harness evaluate`` runs in process on the same files. Its accuracy.txt must equal the script's stdout from
"\\nResults\\n" on, with numpy 2's ``np.float64(x)``/``np.int64(n)`` read as ``x``/``n``: every printed number,
key and order.
"""

from __future__ import annotations

import ast
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from harness.cli import main
from harness.tokenizer import _load
from tests.unit.harness.benchmarks.conftest import write_log
from tests.unit.harness.benchmarks.official_script import (
    LLAMA2_REFERENCE_VENV,
    REFERENCE_VENV,
    git_show,
    inference_mirror,
    installed_versions,
    official_subprocess,
    punkt_tab,
    reference_python,
    rouge_metric_dir,
    skip,
)
from tests.unit.harness.benchmarks.scoring.corpus import UNICODE, pairs

SCRIPT = "language/llama2-70b/evaluate-accuracy.py"
VERSIONS = ("v4.0", "HEAD")  # v4.0 = v4.1; HEAD = v5.0 = v5.0.1 = v5.1 = v5.1.1 (test_the_two_versions_...)
PRINTED_KEYS = ["rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len", "gen_num", "gen_tok_len", "tokens_per_sample"]
HARNESS_DTYPE = {"int32": "int32", "int64": "int64", "float": "float32"}  # the script's --dtype choices -> ours
LOG_DTYPE = {"int32": "<i4", "int64": "<i8", "float": "<f4"}
# name: (venv, environment variable, fallbacks, the pins the Python must have)
PIN_SETS: dict[str, tuple[Path, str, tuple[str, ...], dict[str, str]]] = {
    "llama2-70b-readme": (LLAMA2_REFERENCE_VENV, "LLAMA2_REFERENCE_PYTHON", (), {
        "transformers": "4.31.0", "sentencepiece": "0.1.99", "evaluate": "0.4.0", "nltk": "3.8.1",
        "rouge-score": "0.1.2"}),
    "llama3.1-8b-requirements": (REFERENCE_VENV, "LLAMA31_REFERENCE_PYTHON", ("/tmp/ref-l31/bin/python",), {
        "transformers": "4.46.2", "evaluate": "0.4.0", "nltk": "3.8.1", "rouge-score": "0.1.2"}),
}


# --- the official script and its inputs ---------------------------------------------------------------------

def _official_script(tmp: Path, version: str) -> Path:
    """evaluate-accuracy.py at version, from the mirror, or a skip saying why."""
    mirror = inference_mirror()
    try:
        source = git_show(mirror, f"{version}:{SCRIPT}")
    except subprocess.CalledProcessError:
        skip(f"the mlcommons/inference mirror {mirror} has no {version}:{SCRIPT}")
    folder = tmp / f"official-{version}"
    folder.mkdir()
    (folder / "evaluate-accuracy.py").write_text(source)
    return folder / "evaluate-accuracy.py"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Llama-2-style tokenizer folder: tokenizer.model (BPE, byte fallback) trained here, and its config."""
    import sentencepiece

    tmp = tmp_path_factory.mktemp("llama2-spm")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(r + "\n" + p for r, p in pairs(seed=5, count=300, max_sentences=5)), "utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp / "tok"), vocab_size=600, model_type="bpe", unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=0.995, minloglevel=2)
    folder = tmp / "Llama-2-70b-chat-hf"
    folder.mkdir()
    (tmp / "tok.model").rename(folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "legacy": False, "padding_side": "right", "sp_model_kwargs": {}}))
    _load.cache_clear()
    yield folder
    _load.cache_clear()


def _case(folder: Path, tmp: Path, dtype: str) -> tuple[Path, Path, int]:
    """(accuracy log, dataset pickle, sample count) of the generated set (module docstring)."""
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    unk, bos, eos, space = sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.piece_to_id("▁")
    rng = random.Random(70)
    corpus = pairs(seed=27, count=100, max_sentences=5)
    references = [r for r, _ in corpus]
    references[8], references[9] = "", " \n\t "  # an empty and a blank reference answer
    buffers: list[tuple[int, list[int]]] = []
    for q, (_, prediction) in enumerate(corpus):
        buffers.append((q, [*sp.encode(prediction), *([eos] * rng.randint(0, 3))]))
    buffers[0] = (0, [eos])  # EOS only
    buffers[1] = (1, [])  # an empty buffer
    buffers[2] = (2, [bos, *sp.encode(" ".join(UNICODE) + " 日本語です。 ☃ 😀."), eos])  # BOS, byte fallback
    buffers[3] = (3, [space, *sp.encode("  Blanks , and spaces . He said : I do n't know ' s what ! Is it ?  \n"),
                      eos, eos])  # a lone "▁" first, as Llama 2 often generates
    buffers[5] = (5, [space, sp.piece_to_id("<0x0A>"), *sp.encode("1. First point.\n2. Second"), unk,
                      *sp.encode(" point. Dr. No said so."), eos])  # unk inside
    buffers[6] = (6, [*sp.encode(" ".join(p for _, p in corpus[20:60])), eos])  # very long
    byte = {x: sp.piece_to_id(f"<0x{x:02X}>") for x in (0x80, 0x9F, 0xF0)}
    buffers[10] = (10, [*sp.encode("Cut off inside an emoji"), byte[0xF0], byte[0x9F]])  # max tokens, no EOS
    buffers[11] = (11, [byte[0x80], *sp.encode("A stray continuation byte."), eos])
    buffers.insert(0, (4, sp.encode("A different first answer for four.")))  # duplicates: the first wins
    buffers.append((4, [eos]))
    buffers.append((0, sp.encode("Not the first answer.")))
    buffers = [b for b in buffers if b[0] != 7]  # one sample missing
    log = write_log(tmp / "mlperf_log_accuracy.json", buffers, LOG_DTYPE[dtype])
    frame = pd.DataFrame({
        "input": pd.Series([f"question {q}" for q in range(len(references))], dtype=object),
        "tok_input": pd.Series([[1, 3 + q % 50, 4] for q in range(len(references))], dtype=object),
        "output": pd.Series(references, dtype=object),
    })
    frame.columns = pd.Index(list(frame.columns), dtype=object)  # pandas 3 would pickle a str index pandas 2 lacks
    dataset = tmp / "open_orca_gpt4_tokenized_llama.sampled_24576.pkl"
    frame.to_pickle(dataset)
    return log, dataset, len(references)


def _argv(folder: Path, log: Path, dataset: Path, dtype: str) -> list[str]:
    return ["--checkpoint-path", str(folder), "--mlperf-accuracy-file", str(log), "--dataset-file", str(dataset),
            "--dtype", dtype]


# --- the comparison -----------------------------------------------------------------------------------------

def _harness(capsys: pytest.CaptureFixture[str], folder: Path, log: Path, dataset: Path, dtype: str,
             out: Path) -> tuple[str, dict[str, Any]]:
    """(accuracy.txt, accuracy.json) of ``harness evaluate --benchmark llama2-70b-99.9`` on the same files."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--no-progress", "--accuracy-log", str(log), "--dataset", str(dataset), "--tokenizer",
              str(folder), "--dtype", HARNESS_DTYPE[dtype], "--benchmark", "llama2-70b-99.9", "--output-dir",
              str(out)])
    stdout, stderr = capsys.readouterr()
    assert not exit_.value.code, stderr
    text = (out / "accuracy.txt").read_text()
    assert text.strip() in stdout
    return text, json.loads((out / "accuracy.json").read_text())


def _printed(stdout: str) -> tuple[str, dict[str, Any]]:
    """(the script's print from "\\nResults\\n" on with np.float64(x)/np.int64(n) read as x/n, its dict)."""
    tail = stdout[stdout.rindex("\nResults\n"):]
    plain = re.sub(r"np\.(?:float64|int64)\(([^()]*)\)", r"\1", tail)
    return plain, ast.literal_eval(plain.strip().splitlines()[-1])


def _assert_same(stdout: str, ours: tuple[str, dict[str, Any]], count: int) -> None:
    """Every printed number, key and their order equal; the case's shape is the intended one."""
    text, data = ours
    plain, official = _printed(stdout)
    assert ast.literal_eval(text.strip().splitlines()[-1]) == official
    assert text == plain
    assert list(official) == PRINTED_KEYS
    assert official["gen_num"] == count - 1 and 0 < float(official["rouge1"]) < 100
    assert (data["partial"], data["missing_samples"], data["duplicate_entries"]) == (True, 1, 3)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float"])
@pytest.mark.parametrize("version", VERSIONS)
def test_every_printed_number_equals_the_official_script(checkpoint: Path, tmp_path: Path, version: str,
                                                         dtype: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The official script in this Python with the evaluate and slow-tokenizer stand-ins (module docstring)."""
    script = _official_script(tmp_path, version)
    log, dataset, count = _case(checkpoint, tmp_path, dtype)
    done = official_subprocess(sys.executable, "run_llama2_official", script, _argv(checkpoint, log, dataset, dtype),
                               punkt_tab(), None, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "np.float64(" in done.stdout and "np.int64(" in done.stdout  # numpy 2 here: the checker cannot read it
    _assert_same(done.stdout, _harness(capsys, checkpoint, log, dataset, dtype, tmp_path / "ours"), count)


def _pinned_python(pins: str) -> Path:
    """The Python holding the pin set, or a skip naming every place looked at and what was found."""
    venv, variable, fallbacks, wanted = PIN_SETS[pins]
    python, places = reference_python(venv, variable, *fallbacks)
    if not python.is_file():
        skip(f"no Python with the {pins} pins at any of {', '.join(map(str, places))} (run "
             f"scripts/install-reference-scorers.sh, or set {variable})")
    found = installed_versions(python, list(wanted))
    if found != wanted:
        skip(f"{python} lacks the {pins} pins {wanted} (has {found})")
    return python


@pytest.mark.parametrize(("version", "dtype"), [("v4.0", "int32"), ("HEAD", "int32"), ("HEAD", "float")])
@pytest.mark.parametrize("pins", list(PIN_SETS))
def test_the_pinned_official_run_agrees(checkpoint: Path, tmp_path: Path, version: str, dtype: str, pins: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The official script with the pinned slow LlamaTokenizer and evaluate 0.4.0's real rouge metric.

    The two versions read and decode buffers alike, so the float log (the pinned decoders' own int() of each id)
    runs with HEAD only.
    """
    python = _pinned_python(pins)
    rouge_dir = rouge_metric_dir(tmp_path)
    script = _official_script(tmp_path, version)
    log, dataset, count = _case(checkpoint, tmp_path, dtype)
    done = official_subprocess(python, "run_llama2_official", script, _argv(checkpoint, log, dataset, dtype),
                               punkt_tab(), rouge_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    ours = _harness(capsys, checkpoint, log, dataset, dtype, tmp_path / "ours")
    _assert_same(done.stdout, ours, count)
    numpy = installed_versions(python, ["numpy"])
    assert isinstance(numpy, dict), numpy
    if int(numpy["numpy"].split(".")[0]) >= 2:
        assert "np.float64(" in done.stdout and "np.int64(" in done.stdout
    else:  # numpy 1 prints plain numbers: our accuracy.txt is the script's output verbatim
        assert done.stdout[done.stdout.rindex("\nResults\n"):] == ours[0]


def test_the_two_versions_are_every_version_of_the_script() -> None:
    """Every round tag from v4.0 on, and HEAD, holds the v4.0 or the HEAD file; the two differ."""
    mirror = inference_mirror()
    tags = subprocess.run(["git", "--git-dir", str(mirror), "tag", "--list", "v*"], check=True, capture_output=True,
                          text=True).stdout.split()
    rounds = [t for t in tags if (m := re.fullmatch(r"v(\d+)\.(\d+)(?:\.\d+)?", t)) and
              (int(m.group(1)), int(m.group(2))) >= (4, 0)]
    if "v4.0" not in rounds:
        skip(f"the mlcommons/inference mirror {mirror} has no tag v4.0")
    blobs = {}
    for rev in [*rounds, "HEAD"]:
        done = subprocess.run(["git", "--git-dir", str(mirror), "rev-parse", f"{rev}:{SCRIPT}"], capture_output=True,
                              text=True)
        assert done.returncode == 0, f"{rev} has no {SCRIPT}"
        blobs[rev] = done.stdout.strip()
    tested = {blobs[v] for v in VERSIONS}
    assert len(tested) == 2
    assert {rev for rev, blob in blobs.items() if blob not in tested} == set(), "a version no test runs"
