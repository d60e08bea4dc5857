"""Regenerates nltk310_splits.json: sentence splits by a real nltk >= 3.10.2 with the official punkt_tab.

Run with an interpreter that has nltk 3.10.x installed (not the project's nltk 3.8.1), from the repo root:
    python -m venv /tmp/nltk310 && /tmp/nltk310/bin/pip install nltk==3.10.4
    NLTK_DATA=../shared/reference-data/nltk_data PYTHONPATH=. /tmp/nltk310/bin/python \
        tests/unit/harness/benchmarks/scoring/data/make_nltk310_splits.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import nltk

from tests.unit.harness.benchmarks.scoring.corpus import document

HANDWRITTEN = [
    "He said “Stop.” Then he left.", "She wrote ‘Fine.’ and closed the book.", "«Non.» Il est parti.",
    "The sign read “No entry.”She ignored it.", "“Why?” he asked. “Because!” she said.",
    "It ended.” Next one starts here.", "Quote: “A.” “B.” “C.”", "Plain \"quote.\" Next sentence.",
    # characters whose Unicode class differs between the re and regex engines
    "He ate ½. Then he slept.", "Area is 5 m². Next.", "Chapter Ⅻ. It begins.", "Page ٣. Next page.",
    "Cafe\u0301. Next.", "Mark x\u0301. Then y.", "Snake_. Next.", "Title ǅ. Next one.", "Num ① . Next.",
    "See ⅓. And ¼. Or ¾. Done.", "Go 𝟘. Stop.", "Use ª. Ok.", "Val º. Fine.", "Hi ʰ. Yes.",
]


def main() -> None:
    rng = random.Random(3102)
    docs = HANDWRITTEN + [document(rng, max_sentences=8) for _ in range(500)]
    out = {"nltk": nltk.__version__, "model": "official punkt_tab english",
           "cases": [{"text": d, "sentences": nltk.sent_tokenize(d)} for d in docs]}
    path = Path(__file__).with_name("nltk310_splits.json")
    path.write_text(json.dumps(out, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
