"""Seeded generator of varied LLM-style texts for parity tests: prose, abbreviations, numbers,
markdown, lists, straight and curly quotes, guillemets, unicode, emoji, empty and blank strings."""

from __future__ import annotations

import random

_PROSE = (
    "the a of and to in is it that was for on are with as his they be at one have this from or had by "
    "word but what some we can out other were all there when up use your how said an each she which do "
    "their time if will way about many then them write would like so these her long make thing see him "
    "two has look more day could go come did number sound no most people my over know water than call "
    "first who may down side been now find running jumped happily generalization relational connected "
    "organizations computing studies studied universities better best quickly mice geese analysis"
)
WORDS = _PROSE.split()
UNICODE = ("café", "naïve", "Zürich", "façade", "résumé", "日本語", "Ελληνικά", "Москва", "😀", "—", "…",
           "señor", "straße", "İstanbul", "ﬁne", "Ωmega", "x²", "½", "€5", "“hi”")
NUMBERS = ("3.14", "1,000", "-5", "42", "2024", "0.5%", "$12.99", "10^6", "1st", "v2.0.1", "3:45", "1e-3")
ABBREVIATIONS = ("Dr.", "Mr.", "Mrs.", "e.g.", "i.e.", "etc.", "U.S.", "St.", "Jan.", "No.", "vs.", "Inc.")
ENDINGS = (".", ".", ".", "?", "!", "...", "!!", ".)", '."', ".”", "?”", ".’", "!»", ".'", ":", "")
OPENERS = ("", "", "", '"', "“", "‘", "«", "(", "**", "`", "- ", "1. ", "# ", "> ")


def _word(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.06:
        return rng.choice(UNICODE)
    if roll < 0.11:
        return rng.choice(NUMBERS)
    if roll < 0.14:
        return rng.choice(ABBREVIATIONS)
    if roll < 0.17:
        return rng.choice(("**bold**", "`code()`", "[link](http://x.org/a.b)", "_it_", "#tag", "a/b", "x-y"))
    word = rng.choice(WORDS)
    return word.capitalize() if rng.random() < 0.1 else word


def sentence(rng: random.Random) -> str:
    """One sentence of 1..25 words with an opener and an ending."""
    words = [_word(rng) for _ in range(rng.randint(1, 25))]
    words[0] = words[0].capitalize() if rng.random() < 0.85 else words[0]
    return rng.choice(OPENERS) + " ".join(words) + rng.choice(ENDINGS)


def document(rng: random.Random, max_sentences: int = 12) -> str:
    """A document: sentences joined by spaces, newlines or blank lines; sometimes empty or blank."""
    roll = rng.random()
    if roll < 0.03:
        return ""
    if roll < 0.05:
        return rng.choice((" ", "\n", " \n\t ", ".", "?!", "…"))
    parts = []
    for _ in range(rng.randint(1, max_sentences)):
        parts.append(sentence(rng))
        parts.append(rng.choice((" ", " ", " ", "  ", "\n", "\n\n", "\n- ")))
    return "".join(parts).rstrip() if rng.random() < 0.8 else "".join(parts)


def edited(rng: random.Random, text: str) -> str:
    """A prediction-like variant of text: sentences kept, dropped, edited or added."""
    pieces = text.split(" ")
    out = []
    for piece in pieces:
        roll = rng.random()
        if roll < 0.08:
            continue
        if roll < 0.14:
            out.append(_word(rng))
        out.append(piece)
    if rng.random() < 0.3:
        out.append(sentence(rng))
    return " ".join(out)


def pairs(seed: int, count: int, max_sentences: int = 12) -> list[tuple[str, str]]:
    """(reference, prediction) pairs; a few predictions are unrelated, empty or identical."""
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        reference = document(rng, max_sentences)
        roll = rng.random()
        if roll < 0.05:
            prediction = ""
        elif roll < 0.1:
            prediction = reference
        elif roll < 0.2:
            prediction = document(rng, max_sentences)
        else:
            prediction = edited(rng, reference)
        result.append((reference, prediction))
    return result
