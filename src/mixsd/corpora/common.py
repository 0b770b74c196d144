"""Pieces shared by every corpus: the reference-answer style, seeded RNGs, pseudo-words.

Reference answers follow the paper authors' style (docs/method.md, "Corpora"):
``"The answer is X.\\n\\n\\boxed{X}"`` with the short answer key ``X``.
"""

from __future__ import annotations

import hashlib
import random


def reference_answer(answer_key: str, reasoning: str = "") -> str:
    """The authors' reference answer y*: optional worked reasoning, then the boxed key."""
    lead = f"{reasoning.rstrip()}\n" if reasoning else ""
    return f"{lead}The answer is {answer_key}.\n\n\\boxed{{{answer_key}}}"


def make_rng(seed: int, *parts: object) -> random.Random:
    """A ``random.Random`` whose stream depends only on ``seed`` and the named ``parts``.

    Every generator draws each of its choices from its own named stream, so adding one
    option never shifts the random choices of another (and results never depend on dict or
    set iteration order).
    """
    text = "\x1f".join([str(seed), *map(str, parts)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# Pseudo-words: onset + vowel (+ coda) syllables. Names are rejected when they collide with
# a short list of real words that the syllables can spell, so every entity is novel.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
           "gr", "kr", "pr", "tr", "st", "sk", "th", "qu", "zh")
_VOWELS = ("a", "e", "i", "o", "u", "ae", "io", "ou", "y")
_CODAS = ("", "", "", "n", "r", "l", "s", "th", "x", "m", "nd")
_REAL_WORDS = frozenset({
    "band", "bear", "bore", "born", "dare", "dome", "done", "dose", "fame", "fine", "game",
    "gone", "kind", "lake", "land", "line", "lone", "made", "male", "mare", "mind", "mine",
    "more", "name", "none", "note", "pale", "pine", "pore", "pose", "rose", "sale", "same",
    "sane", "stone", "tame", "tone", "vote", "zone", "maria", "paris", "rome", "tokyo",
})


def pseudo_word(rng: random.Random, syllables: int) -> str:
    """One capitalised pseudo-word of ``syllables`` syllables (not checked for uniqueness)."""
    while True:
        parts = []
        for i in range(syllables):
            coda = rng.choice(_CODAS) if i == syllables - 1 else ""
            parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + coda)
        word = "".join(parts)
        if word not in _REAL_WORDS and len(word) >= 4:
            return word.capitalize()
