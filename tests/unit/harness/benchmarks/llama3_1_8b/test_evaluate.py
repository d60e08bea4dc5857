"""The llama3.1-8b scorer prints exactly what the OFFICIAL language/llama3.1-8b/evaluation.py prints.

The official script is taken from the inference mirror (git show HEAD:...) and its own main() runs on a
generated set, tokenized twice: by a SentencePiece tokenizer trained here (tokenizer.model, as Llama 2) and by a
byte-level BPE tokenizer trained here with a Llama-3.1-style config (tokenizer.json, PreTrainedTokenizerFast,
clean_up_tokenization_spaces true); duplicates of a qsl_idx, trailing EOS, unicode, empty answers, a missing
sample. Offline, three things it fetches at run time are supplied locally:

- ``nltk.download("punkt")``: a no-op; ``nltk.sent_tokenize`` (nltk 3.8.1 loads ``tokenizers/punkt/
  english.pickle``) finds in nltk's resource cache a PunktSentenceTokenizer built from the official punkt_tab
  English files in shared/reference-data/nltk_data, so nltk's own sent_tokenize code runs.
- ``evaluate.load("rouge")``: with the pinned libraries (see below) the real evaluate 0.4.0 loads the metric
  script metrics/rouge/rouge.py at tag v0.4.0 from a local huggingface/evaluate mirror. Without them, a stand-in
  does what that file's ``Rouge._compute`` does for these arguments (read there): ``rouge_scorer.RougeScorer(
  rouge_types=["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=use_stemmer)``, ``scorer.score(ref,
  pred)`` per pair in order, and with use_aggregator=False ``{key: [score[key].fmeasure ...]}`` in the order of
  the first score's keys; evaluate's Arrow round trip of plain strings changes nothing.
- the tokenizer: ``AutoTokenizer.from_pretrained(..., use_fast=False)`` on the checkpoint folder passed as
  --model-name. With the pinned transformers 4.46.2 that is the slow LlamaTokenizer itself; the installed
  transformers 5 decodes byte-fallback pieces differently and skips the space clean-up for BPE, so without the
  pin a stand-in decodes as 4.46.2 does: for tokenizer.model as the slow tokenizer for a vocabulary without added
  tokens (special ids dropped, sentencepiece decoding of the rest); for tokenizer.json (the class stays
  PreTrainedTokenizerFast there) the ``tokenizers`` library's decoding with skip_special_tokens, then
  ``clean_up_tokenization`` (read in 4.46.2: ten ``str.replace`` of spaces before punctuation and contractions).

The fully pinned run needs a Python with transformers==4.46.2, evaluate==0.4.0 and datasets (the first of
<checkout>/.venv-reference/bin/python, built by scripts/install-reference-scorers.sh, $LLAMA31_REFERENCE_PYTHON and
/tmp/ref-l31/bin/python that exists) and the evaluate mirror; where they are missing that test skips and says why.
It imports only tests/unit/harness/benchmarks/official_script.py (which holds the offline setup above). The
stand-in run needs only the inference mirror and the punkt_tab files.
"""

from __future__ import annotations

import ast
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.benchmarks.llama3_1_8b import evaluate
from harness.benchmarks.scoring import texts
from harness.benchmarks.scoring.sentences import postprocess
from harness.errors import ConfigError
from harness.tokenizer import _load, load_tokenizer
from tests.unit.harness.benchmarks.conftest import write_log
from tests.unit.harness.benchmarks.official_script import (
    PUNKT_TABS,
    REFERENCE_VENV,
    ROOT,
    git_show,
    mirror,
    reference_python,
    run_official,
)
from tests.unit.harness.benchmarks.scoring.corpus import UNICODE, pairs

_ROOT = ROOT
_REFERENCE_PYTHON, _REFERENCE_PLACES = reference_python(REFERENCE_VENV, "LLAMA31_REFERENCE_PYTHON",
                                                        "/tmp/ref-l31/bin/python")
_PINS = {"transformers": "4.46.2", "evaluate": "0.4.0", "nltk": "3.8.1"}
CHECKER_FALLBACK = {  # inference HEAD tools/submission/submission_checker/constants.py ACC_PATTERN
    "ROUGE1": r".*'rouge1':\s+'?([\d.]+)'?.*", "ROUGE2": r".*'rouge2':\s+'?([\d.]+)'?.*",
    "ROUGEL": r".*'rougeL':\s+'?([\d.]+)'?.*", "ROUGELSUM": r".*'rougeLsum':\s+'?([\d.]+)'?.*",
    "GEN_LEN": r".*'gen_len':\s([\d.]+).*",
}
KEYS = {"ROUGE1": "rouge1", "ROUGE2": "rouge2", "ROUGEL": "rougeL", "ROUGELSUM": "rougeLsum", "GEN_LEN": "gen_len"}


_mirror, _git_show = mirror, git_show


def _official_dir(tmp: Path) -> Path:
    """evaluation.py and dataset.py of language/llama3.1-8b at the mirror's HEAD, or a skip saying why."""
    mirror = _mirror("mlcommons+inference")
    if mirror is None:
        pytest.skip("no mlcommons/inference mirror (.mirror/mlcommons+inference/repo) to take evaluation.py from")
    folder = tmp / "official"
    folder.mkdir()
    for name in ("evaluation.py", "dataset.py"):
        (folder / name).write_text(_git_show(mirror, f"HEAD:language/llama3.1-8b/{name}"))
    return folder


def _punkt_tab() -> Path:
    folder = next((p for p in PUNKT_TABS if p.is_dir()), None)
    if folder is None:
        pytest.skip("no official punkt_tab English files in shared/reference-data/nltk_data")
    return folder


# --- the generated set --------------------------------------------------------------------------------------

def _train_spm(tmp: Path, corpus: Path) -> Path:
    """A Llama-2-style folder with only tokenizer.model (BPE with byte fallback) and its config."""
    import sentencepiece

    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(tmp / "tok"), vocab_size=600, model_type="bpe", unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=0.995, minloglevel=2)
    folder = tmp / "llama-spm"
    folder.mkdir()
    (tmp / "tok.model").rename(folder / "tokenizer.model")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
        "pad_token": None, "add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "legacy": False, "sp_model_kwargs": {}}))
    return folder


def _train_bpe(tmp: Path, corpus: Path) -> Path:
    """A Llama-3.1-style folder: byte-level BPE tokenizer.json, PreTrainedTokenizerFast, clean-up of spaces on."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train([str(corpus)], trainers.BpeTrainer(
        vocab_size=900, special_tokens=list(_BPE_SPECIALS), initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    folder = tmp / "llama3-bpe"
    folder.mkdir()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": _BPE_SPECIALS[0], "eos_token": _BPE_SPECIALS[1],
        "clean_up_tokenization_spaces": True, "model_max_length": 131072}))
    return folder


_BPE_SPECIALS = ("<|begin_of_text|>", "<|eot_id|>")


@pytest.fixture(scope="module", params=["sentencepiece", "bpe-llama3"])
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tokenizer folder trained here: SentencePiece (Llama 2 style) or byte-level BPE (Llama 3.1 style)."""
    tmp = tmp_path_factory.mktemp(request.param)
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(r + "\n" + p for r, p in pairs(seed=5, count=300, max_sentences=5)), "utf-8")
    folder = _train_spm(tmp, corpus) if request.param == "sentencepiece" else _train_bpe(tmp, corpus)
    _load.cache_clear()
    yield folder
    _load.cache_clear()


def _encoder(folder: Path) -> tuple[Any, int, int]:
    """(encode text -> ids, BOS id, EOS id) of a checkpoint, without transformers."""
    import sentencepiece
    import tokenizers

    if (folder / "tokenizer.model").is_file():
        sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
        return sp.encode, sp.bos_id(), sp.eos_id()
    fast = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    return (lambda text: fast.encode(text, add_special_tokens=False).ids), *map(fast.token_to_id, _BPE_SPECIALS)


def _case(folder: Path, tmp: Path, dtype: str = "<i4") -> tuple[Path, Path, list[str]]:
    """(log, dataset file, references): edited answers, EOS tails, empty, unicode, duplicates, one missing."""
    encode, bos, eos = _encoder(folder)
    rng = random.Random(31)
    corpus = pairs(seed=8, count=90, max_sentences=5)
    references = [r if r.strip() else "Nothing was reported." for r, _ in corpus]
    buffers: list[tuple[int, list[int]]] = []
    for q, (_, prediction) in enumerate(corpus):
        buffers.append((q, [*encode(prediction), *([eos] * rng.randint(0, 3))]))
    buffers[0] = (0, [eos])  # EOS only
    buffers[1] = (1, [])  # an empty buffer
    buffers[2] = (2, [bos, *encode(" ".join(UNICODE) + " 日本語です。 ☃ 😀."), eos])  # BOS, unicode, byte fallback
    buffers[3] = (3, [*encode("  Blanks , and spaces . He said : I do n't know ' s what ! Is it ?  \n"), eos, eos])
    buffers.insert(0, (4, encode("A different first answer for four.")))  # duplicates: the first wins
    buffers.append((4, [eos]))
    buffers.append((0, encode("Not the first answer.")))
    buffers = [b for b in buffers if b[0] != 7]  # one sample missing
    log = write_log(tmp / "mlperf_log_accuracy.json", buffers, dtype)
    rows = [{"input": f"article {q}", "tok_input": [1, 2, 3], "output": ref} for q, ref in enumerate(references)]
    dataset = tmp / "cnn_eval.json"
    dataset.write_text(json.dumps(rows))
    return log, dataset, references


def _official_stdout(capsys: pytest.CaptureFixture[str], tmp: Path, log: Path, dataset: Path, folder: Path,
                     count: int, dtype: str) -> str:
    official = _official_dir(tmp)
    argv = ["--mlperf-accuracy-file", str(log), "--dataset-file", str(dataset), "--dtype", dtype,
            "--model-name", str(folder), "--total-sample-count", str(count)]
    saved = (sys.argv, sys.path[:], dict(sys.modules))
    import nltk
    import nltk.data

    download, cache = nltk.download, dict(nltk.data._resource_cache)
    try:
        capsys.readouterr()
        run_official(str(official), argv, str(_punkt_tab()), None, stand_ins=True)
        return capsys.readouterr().out
    finally:
        sys.argv, sys.path[:] = saved[0], saved[1]
        for name in set(sys.modules) - set(saved[2]):
            if name in ("evaluation", "dataset", "evaluate", "datasets"):
                del sys.modules[name]
        sys.modules.update({k: v for k, v in saved[2].items() if k in ("evaluate", "datasets", "dataset")})
        nltk.download = download
        nltk.data._resource_cache.clear()
        nltk.data._resource_cache.update(cache)


def _printed_dict(stdout: str) -> dict[str, Any]:
    """The dict line of the script's output, np.int64(N) read as N."""
    line = stdout.strip().splitlines()[-1]
    return ast.literal_eval(re.sub(r"np\.int64\((\d+)\)", r"\1", line))


def _ours(folder: Path, log: Path, references: list[str], dtype: str = "int32", **kwargs: Any) -> Any:
    return evaluate.score_accuracy_log(log, references, load_tokenizer(str(folder)), dtype=dtype, **kwargs)


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_every_printed_number_equals_the_official_script(checkpoint: Path, tmp_path: Path, dtype: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    log, dataset, references = _case(checkpoint, tmp_path, "<i4" if dtype == "int32" else "<i8")
    stdout = _official_stdout(capsys, tmp_path, log, dataset, checkpoint, len(references), dtype)
    report = _ours(checkpoint, log, references, dtype)
    expected = _printed_dict(stdout)
    assert evaluate.printed(report.summary) == expected
    assert evaluate.accuracy_text(report) == re.sub(r"np\.int64\((\d+)\)", r"\1", stdout)
    assert expected["gen_num"] == len(references) - 1 and 0 < float(expected["rouge1"]) < 100
    assert (report.partial, report.missing_samples, report.duplicate_entries) == (True, 1, 3)
    assert report.samples[0].qsl_idx == 4 and report.samples[0].gen_len == len("A different first answer "
                                                                               "for four.")
    assert report.samples[1].gen_len == report.samples[2].gen_len == 0


def test_the_pinned_official_run_agrees(checkpoint: Path, tmp_path: Path) -> None:
    """The official script with transformers 4.46.2's slow tokenizer and evaluate 0.4.0's real rouge metric."""
    python = Path(_REFERENCE_PYTHON)
    if not python.is_file():
        pytest.skip(f"no Python with the reference pins at any of {', '.join(map(str, _REFERENCE_PLACES))} "
                    "(run scripts/install-reference-scorers.sh, or set LLAMA31_REFERENCE_PYTHON)")
    probe = subprocess.run([str(python), "-c", "import transformers, evaluate, nltk; print(transformers.__version__,"
                            " evaluate.__version__, nltk.__version__)"], capture_output=True, text=True)
    versions = dict(zip(_PINS, probe.stdout.split(), strict=False))
    if probe.returncode or versions != _PINS:
        pytest.skip(f"{python} lacks the reference pins {_PINS} (has {versions or probe.stderr.strip()[-200:]})")
    evaluate_mirror = _mirror("huggingface+evaluate")
    if evaluate_mirror is None:
        pytest.skip("no huggingface/evaluate mirror to take metrics/rouge/rouge.py at v0.4.0 from")
    rouge_dir = tmp_path / "rouge"
    rouge_dir.mkdir()
    (rouge_dir / "rouge.py").write_text(_git_show(evaluate_mirror, "v0.4.0:metrics/rouge/rouge.py"))
    log, dataset, references = _case(checkpoint, tmp_path)
    official = _official_dir(tmp_path)
    argv = ["--mlperf-accuracy-file", str(log), "--dataset-file", str(dataset), "--dtype", "int32",
            "--model-name", str(checkpoint), "--total-sample-count", str(len(references))]
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from tests.unit.harness.benchmarks.official_script import run_official; "
            "run_official(sys.argv[2], sys.argv[6:], sys.argv[3], sys.argv[4], sys.argv[5] == '1')")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    done = subprocess.run([str(python), "-c", code, str(_ROOT), str(official), str(_punkt_tab()), str(rouge_dir),
                           "0", *argv], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = _ours(checkpoint, log, references)
    assert "np.int64(" in done.stdout  # the numpy-2 print the checker's GEN_LEN regex cannot read
    assert evaluate.printed(report.summary) == _printed_dict(done.stdout)
    assert evaluate.accuracy_text(report) == re.sub(r"np\.int64\((\d+)\)", r"\1", done.stdout[done.stdout.index(
        "\nResults\n"):])


def test_engines_and_worker_counts_give_the_same_report(checkpoint: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    log, _, references = _case(checkpoint, tmp_path)
    serial = _ours(checkpoint, log, references, workers=1)
    monkeypatch.setattr(texts, "PARALLEL_MIN_SAMPLES", 1)
    forked = _ours(checkpoint, log, references, workers=2)
    python = _ours(checkpoint, log, references, workers=2, engine="python")
    assert serial.samples == forked.samples == python.samples
    assert serial.summary == forked.summary == python.summary and python.engine == "python"


def _checker_patterns() -> dict[str, str]:
    mirror = _mirror("mlcommons+inference")
    if mirror is None:
        return CHECKER_FALLBACK
    source = _git_show(mirror, "HEAD:tools/submission/submission_checker/constants.py")
    block = source[source.index("ACC_PATTERN = {"):]
    block = block[block.index("{"):block.index("\n}") + 2]
    patterns = ast.literal_eval(block)
    return {name: patterns[name] for name in KEYS}


def test_accuracy_txt_is_read_by_the_checker_and_the_raw_print_is_not(checkpoint: Path, tmp_path: Path) -> None:
    log, _, references = _case(checkpoint, tmp_path)
    report = _ours(checkpoint, log, references)
    written = evaluate.write_accuracy_outputs(report, tmp_path)
    text = (tmp_path / "accuracy.txt").read_text()
    patterns = _checker_patterns()
    for name, key in KEYS.items():
        values = [m.group(1) for line in text.splitlines() if (m := re.match(patterns[name], line))]
        assert [float(v) for v in values] == [float(report.summary[key])], name
    raw = text.replace(f"'gen_len': {report.summary['gen_len']}", f"'gen_len': {np.int64(report.summary['gen_len'])!r}")
    assert "np.int64(" in raw and not any(re.match(patterns["GEN_LEN"], line) for line in raw.splitlines())
    data = json.loads((tmp_path / "accuracy.json").read_text())
    assert data["summary"] == report.summary and data["partial"] is True and data["missing_samples"] == 1
    assert [v["metric"] for v in data["verdicts"]] == ["rouge1", "rouge2", "rougeL", "rougeLsum", "gen_len",
                                                       "gen_len"]
    assert data["passed"] is False  # a 90-sample set is far below GEN_LEN's lower limit
    assert [p.name for p in written] == ["accuracy.txt", "accuracy.json"]
    with pytest.raises(ConfigError, match="already exists"):
        evaluate.write_accuracy_outputs(report, tmp_path)


def test_verdict_uses_the_benchmark_targets(checkpoint: Path, tmp_path: Path) -> None:
    log, _, references = _case(checkpoint, tmp_path)
    edge = _ours(checkpoint, log, references, benchmark="llama3.1-8b-edge")
    datacenter = _ours(checkpoint, log, references)
    assert edge.summary == datacenter.summary
    assert [v.limit for v in edge.verdicts] != [v.limit for v in datacenter.verdicts]
    gen_len = [v for v in datacenter.verdicts if v.metric == "gen_len"]
    assert [(v.op, v.passed) for v in gen_len] == [(">=", False), ("<=", True)]


def test_bad_settings_are_one_line_errors(checkpoint: Path, tmp_path: Path) -> None:
    log, _, references = _case(checkpoint, tmp_path)
    with pytest.raises(ConfigError, match="int32 or int64") as err:
        _ours(checkpoint, log, references, dtype="float32")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="benchmark"):
        _ours(checkpoint, log, references, benchmark="llama3.1-70b")


def test_a_llama3_style_fast_tokenizer_decodes_with_the_space_clean_up(checkpoint: Path) -> None:
    """transformers 5 skips clean_up_tokenization for BPE; the pinned 4.46.2 applies it when the config asks."""
    tokenizer = load_tokenizer(str(checkpoint))
    encode, _, eos = _encoder(checkpoint)
    ids = [*encode("Hello , world . I do n't know ' s what ?"), eos]
    bpe = checkpoint.name == "llama3-bpe"
    assert texts.fast_clean_up(tokenizer) is bpe
    assert texts.fast_clean_up(load_tokenizer(None)) is False  # the embedded SmolLM2 (Llama 2's tests): unchanged
    done = texts.prepare_texts(tokenizer, [ids], ["x"], splitter="nltk-3.8", workers=1,
                               clean_up_spaces=texts.fast_clean_up(tokenizer))
    expected = "Hello, world. I don't know's what?" if bpe else "Hello , world . I do n't know ' s what ?"
    assert done.predictions == [postprocess(expected)]
