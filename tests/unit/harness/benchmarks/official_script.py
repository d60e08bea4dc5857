"""Run MLCommons' official accuracy scripts offline, for the tests that compare them with ``harness evaluate``.

Used by llama3_1_8b/test_evaluate.py (language/llama3.1-8b/evaluation.py) and llama2_70b/test_evaluate_official.py
(language/llama2-70b/evaluate-accuracy.py). The official script is taken from the git mirror of mlcommons/inference
(``git --git-dir MIRROR show REV:PATH``; MLPERF_INFERENCE_GIT, else ``.mirror/mlcommons+inference/repo`` under /work
or beside the checkout) and its own ``main()`` runs unchanged, with ``sys.argv`` set. What it fetches at run time is
supplied locally first, in the process that runs it:

- ``nltk.download(...)`` ("punkt", "punkt_tab") is a no-op. nltk 3.8.1's ``sent_tokenize`` loads
  ``tokenizers/punkt/english.pickle``; nltk's resource cache holds under that name a ``PunktSentenceTokenizer`` built
  from the official punkt_tab English files (``shared/reference-data/nltk_data``, beside the checkout), so nltk's own
  splitting code runs on the official parameters.
- ``evaluate.load("rouge")``: in a pinned Python (real evaluate 0.4.0) it loads the metric script
  ``metrics/rouge/rouge.py`` of evaluate's tag v0.4.0, written from the huggingface/evaluate mirror to a local folder.
  In stand-in mode a module ``evaluate`` whose ``load`` returns ``RougeStandIn`` (that file's ``Rouge._compute`` for
  these arguments) is put in ``sys.modules`` before the script is imported.
- the tokenizer: in a pinned Python, ``AutoTokenizer.from_pretrained(<folder>, use_fast=False)`` of the pinned
  transformers on a tokenizer folder trained by the test. In stand-in mode the script's ``AutoTokenizer`` is replaced
  by ``PinnedDecodingStandIn``, which decodes as the pinned transformers do (see there).

The llama2-70b script's HEAD version scores ROUGE in a ``multiprocessing.Pool``: its workers are forked (Linux), so
they inherit all of the above; the script is imported under the module name ``evaluate_accuracy`` so that the pool
can find ``compute_rouge_chunk`` by name.

Only the standard library is imported at module level: the pinned Pythons that scripts/install-reference-scorers.sh
builds run this file with neither pytest nor the harness installed. The helpers that skip import pytest when called.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[4]
# the git mirrors: MLPERF_INFERENCE_GIT (as the checker tests read it), the machine's /work/.mirror, or .mirror
# beside the checkout
MIRRORS = [("mlcommons+inference", Path(os.environ["MLPERF_INFERENCE_GIT"]))] \
    if "MLPERF_INFERENCE_GIT" in os.environ else []
MIRRORS += [(name, base / ".mirror" / name / "repo") for base in (Path("/work"), ROOT.parent, ROOT.parent.parent)
            for name in ("mlcommons+inference", "huggingface+evaluate")]
PUNKT_TABS = [base / "shared" / "reference-data" / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
              for base in (ROOT.parent, ROOT.parent.parent)]
# scripts/install-reference-scorers.sh builds these two; the tests look there first
REFERENCE_VENV = ROOT / ".venv-reference"  # language/llama3.1-8b/requirements.txt: transformers 4.46.2
LLAMA2_REFERENCE_VENV = ROOT / ".venv-reference-llama2"  # language/llama2-70b/README.md: transformers 4.31.0
HF_OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_EVALUATE_OFFLINE": "1",
              "TRANSFORMERS_OFFLINE": "1"}


def skip(reason: str) -> NoReturn:
    """pytest.skip (imported here: the pinned Pythons have no pytest)."""
    import pytest

    pytest.skip(reason)


def mirror(name: str) -> Path | None:
    """The git directory of a mirror ("mlcommons+inference" or "huggingface+evaluate"), or None."""
    return next((path for kind, path in MIRRORS if kind == name and path.is_dir()), None)


def git_show(mirror_dir: Path, spec: str) -> str:
    """``git show REV:PATH`` of a mirror."""
    return subprocess.run(["git", "--git-dir", str(mirror_dir), "show", spec], check=True, capture_output=True,
                          text=True).stdout


def inference_mirror() -> Path:
    """The mlcommons/inference mirror, or a skip saying why."""
    found = mirror("mlcommons+inference")
    if found is None:
        skip("no mlcommons/inference mirror (.mirror/mlcommons+inference/repo or MLPERF_INFERENCE_GIT) to take the "
             "official script from")
    return found


def punkt_tab() -> Path:
    """The official punkt_tab English folder, or a skip saying why."""
    folder = next((p for p in PUNKT_TABS if p.is_dir()), None)
    if folder is None:
        skip("no official punkt_tab English files in shared/reference-data/nltk_data")
    return folder


def rouge_metric_dir(tmp: Path) -> Path:
    """A folder holding evaluate's metrics/rouge/rouge.py at tag v0.4.0 (from the mirror), or a skip saying why."""
    evaluate_mirror = mirror("huggingface+evaluate")
    if evaluate_mirror is None:
        skip("no huggingface/evaluate mirror to take metrics/rouge/rouge.py at v0.4.0 from")
    folder = tmp / "rouge"
    folder.mkdir()
    (folder / "rouge.py").write_text(git_show(evaluate_mirror, "v0.4.0:metrics/rouge/rouge.py"))
    return folder


def reference_python(venv: Path, env_var: str, *fallbacks: str) -> tuple[Path, list[Path]]:
    """(the pinned Python to use, every place looked at): venv/bin/python, then $env_var, then the fallbacks.

    The first that is a file wins; when none is, the first place is returned (the caller skips, naming them all).
    """
    places = [venv / "bin" / "python"]
    places += [Path(os.environ[env_var])] if os.environ.get(env_var) else []
    places += [Path(p) for p in fallbacks]
    return next((p for p in places if p.is_file()), places[0]), places


def installed_versions(python: Path, names: list[str]) -> dict[str, str] | str:
    """{distribution: version} as python's importlib.metadata sees them, or the error text."""
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m, sys; "
                           "print(*(m.version(n) for n in sys.argv[1:]))", *names], capture_output=True, text=True)
    if done.returncode:
        return done.stderr.strip()[-300:]
    return dict(zip(names, done.stdout.split(), strict=True))


def offline_env(tmp: Path) -> dict[str, str]:
    """The environment of an official run: the Hugging Face libraries offline, their caches under tmp."""
    return {**os.environ, **HF_OFFLINE, "HF_HOME": str(tmp / "hf-home")}


# --- the offline setup of the official script (runs in this process or in the pinned Python) ---------------

def punkt_tokenizer(folder: Path) -> Any:
    """nltk's PunktSentenceTokenizer with the parameters of the official punkt_tab English files in folder."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    def lines(name: str) -> list[str]:
        return [x for x in (folder / name).read_text(encoding="utf-8").split("\n") if x]

    params = PunktParameters()
    params.abbrev_types, params.sent_starters = set(lines("abbrev_types.txt")), set(lines("sent_starters.txt"))
    params.collocations = {tuple(x.split("\t")) for x in lines("collocations.tab")}
    for line in lines("ortho_context.tab"):
        word, flags = line.split("\t")
        params.ortho_context[word] = int(flags)
    return PunktSentenceTokenizer(params)


class RougeStandIn:
    """evaluate 0.4.0 metrics/rouge/rouge.py ``Rouge._compute`` for single references and no tokenizer."""

    def compute(self, *, predictions: list[str], references: list[str], use_stemmer: bool = False,
                use_aggregator: bool = True) -> dict[str, list[float]]:
        from rouge_score import rouge_scorer

        assert not use_aggregator, "the official script scores without aggregation"
        scorer = rouge_scorer.RougeScorer(rouge_types=["rouge1", "rouge2", "rougeL", "rougeLsum"],
                                          use_stemmer=use_stemmer)
        scores = [scorer.score(ref, pred) for ref, pred in zip(references, predictions)]  # noqa: B905 (as there)
        return {key: [s[key].fmeasure for s in scores] for key in scores[0]}


CLEAN_UPS = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


class PinnedDecodingStandIn:
    """transformers 4.46.2 AutoTokenizer(use_fast=False).batch_decode(skip_special_tokens=True).

    For tokenizer.model (the slow LlamaTokenizer, a vocabulary without added tokens): special ids (unk, bos, eos)
    dropped, sentencepiece decoding of the rest's pieces; transformers 4.31.0 (Llama 2's pin) decodes the same
    there (tests/unit/harness/benchmarks/llama2_70b/test_evaluate_official.py runs both pins). For tokenizer.json
    (the class stays PreTrainedTokenizerFast): the ``tokenizers`` library's decoding with skip_special_tokens, then
    ``clean_up_tokenization`` when the config asks (read in 4.46.2: ten ``str.replace`` of spaces before
    punctuation and contractions).
    """

    def __init__(self, folder: str) -> None:
        import sentencepiece
        import tokenizers

        self.eos_token, self.pad_token = "</s>", None
        self.sp = self.fast = None
        if (Path(folder) / "tokenizer.model").is_file():
            self.sp = sentencepiece.SentencePieceProcessor(model_file=str(Path(folder) / "tokenizer.model"))
            self.special = {self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()}
        else:
            self.fast = tokenizers.Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        config = json.loads((Path(folder) / "tokenizer_config.json").read_text())
        self.clean_up = config.get("clean_up_tokenization_spaces", False)

    @classmethod
    def from_pretrained(cls, folder: str, **_: Any) -> PinnedDecodingStandIn:
        return cls(folder)

    def batch_decode(self, sequences: list[Any], skip_special_tokens: bool = False) -> list[str]:
        assert skip_special_tokens
        return [self._decode([int(i) for i in ids]) for ids in sequences]

    def _decode(self, ids: list[int]) -> str:
        if self.sp is not None:
            text = self.sp.decode([self.sp.id_to_piece(i) for i in ids if i not in self.special])
        else:
            assert self.fast is not None
            text = self.fast.decode(ids, skip_special_tokens=True)
        for old, new in CLEAN_UPS if self.clean_up else ():
            text = text.replace(old, new)
        return text


def _prime_nltk(punkt_tab_dir: str) -> None:
    """nltk.download a no-op; tokenizers/punkt/english.pickle in nltk's cache, built from the punkt_tab files."""
    import nltk
    import nltk.data

    key = nltk.data.add_py3_data(nltk.data.normalize_resource_url("tokenizers/punkt/english.pickle"))
    nltk.data._resource_cache[(key, "pickle")] = punkt_tokenizer(Path(punkt_tab_dir))
    nltk.download = lambda *args, **kwargs: True


def run_official(folder: str, argv: list[str], punkt_tab: str, rouge_script: str | None, stand_ins: bool) -> None:
    """Import language/llama3.1-8b's evaluation.py from folder and run its main() with argv, offline (above)."""
    _prime_nltk(punkt_tab)
    if stand_ins:
        sys.modules.setdefault("datasets", types.SimpleNamespace(  # type: ignore[arg-type]
            load_dataset=None, load_from_disk=None))
        sys.modules["evaluate"] = types.SimpleNamespace(load=lambda name: RougeStandIn())  # type: ignore[assignment]
    sys.path.insert(0, folder)
    import evaluation

    if stand_ins:
        evaluation.AutoTokenizer = PinnedDecodingStandIn
    else:
        real_load = evaluation.evaluate.load
        evaluation.evaluate.load = lambda name: real_load(rouge_script) if name == "rouge" else real_load(name)
    sys.argv = ["evaluation.py", *argv]
    evaluation.main()


def run_llama2_official(script: str, argv: list[str], punkt_tab: str, rouge_script: str | None,
                        stand_ins: bool) -> None:
    """Import language/llama2-70b's evaluate-accuracy.py (the file script) and run its main() with argv, offline.

    ``evaluate.load`` is replaced before the script is imported, so the HEAD version's pool workers (forked) load
    the same local metric; the script is registered as module ``evaluate_accuracy`` for the pool's pickling.
    """
    _prime_nltk(punkt_tab)
    if stand_ins:
        sys.modules["evaluate"] = types.SimpleNamespace(load=lambda name: RougeStandIn())  # type: ignore[assignment]
    else:
        import evaluate

        real_load = evaluate.load
        evaluate.load = lambda name, *args, **kwargs: real_load(rouge_script if name == "rouge" else name,
                                                                *args, **kwargs)
    spec = importlib.util.spec_from_file_location("evaluate_accuracy", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["evaluate_accuracy"] = module
    spec.loader.exec_module(module)
    if stand_ins:
        module.AutoTokenizer = PinnedDecodingStandIn  # type: ignore[attr-defined]
    sys.argv = ["evaluate-accuracy.py", *argv]
    module.main()


def official_subprocess(python: Path | str, runner: str, target: Path, argv: list[str], punkt_tab_dir: Path,
                        rouge_dir: Path | None, tmp: Path) -> subprocess.CompletedProcess[str]:
    """Run runner ("run_official" or "run_llama2_official") of this module on target in python, offline.

    Only this module is imported there (the standard library at its top), with the checkout on sys.path.
    """
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from tests.unit.harness.benchmarks import official_script as o; "
            "getattr(o, sys.argv[2])(sys.argv[3], sys.argv[7:], sys.argv[4], sys.argv[5], sys.argv[6] == '1')")
    rouge = str(rouge_dir) if rouge_dir is not None else "-"
    return subprocess.run([str(python), "-c", code, str(ROOT), runner, str(target), str(punkt_tab_dir), rouge,
                           "1" if rouge_dir is None else "0", *argv], capture_output=True, text=True,
                          env=offline_env(tmp), cwd=tmp, timeout=600)
