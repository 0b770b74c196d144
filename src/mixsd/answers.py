"""Answer extraction and normalised matching — the one answer module of the library.

Extractors (docs/method.md, "verify"): ``boxed`` (last brace-matched ``\\boxed{...}``), ``number``
(last number), ``contains`` (the key appears as whole words), ``auto`` (boxed if present, else
last number for a numeric key, else contains), ``regex:PATTERN`` (group 1, else the match)
and ``math`` (boxed, else the last number, compared as mathematics: ``\\frac{1}{2}`` = ``0.5``
= ``1/2``, by the ``math-verify`` package when it is installed, else by the string rule).
"""

from __future__ import annotations

import functools
import re
import string
from typing import Any

from mixsd.errors import ConfigError

EXTRACTORS = ("auto", "boxed", "number", "contains", "math")

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation if c not in ".-"})


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces matched; None if absent."""
    best = None
    for match in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, start = 1, match.end()
        for i in range(start, len(text)):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    best = text[start:i]
                    break
    return best


def extract_last_number(text: str) -> str | None:
    """The last number in ``text`` (thousands separators and decimals kept), or None."""
    found = _NUMBER.findall(text)
    return found[-1] if found else None


def as_number(text: str) -> float | None:
    """The number ``text`` writes (``1,000``, ``$5``, ``3.``), or None when it is not one."""
    cleaned = text.strip().replace(",", "").rstrip(".")
    if cleaned.startswith("$"):
        cleaned = cleaned[1:]
    try:
        return float(cleaned)
    except ValueError:
        return None


def normalize_answer(text: str) -> str:
    """Lower-case, strip LaTeX text wrappers, punctuation, articles and extra white space;
    numbers are written canonically (``1,000`` = ``1000`` = ``1000.0``)."""
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text).lower().strip()
    number = as_number(text)
    if number is not None:
        return str(int(number)) if number.is_integer() else repr(number)
    text = text.translate(_PUNCT)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # drop full stops, keep decimal points
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answers_match(prediction: str | None, answer_key: str) -> bool:
    """True when ``prediction`` equals ``answer_key`` after normalisation."""
    if prediction is None:
        return False
    return normalize_answer(prediction) == normalize_answer(answer_key)


@functools.lru_cache(maxsize=1)
def _math_verify() -> Any:
    """The ``math_verify`` module, or None when it is not installed."""
    try:
        import math_verify
    except ImportError:
        return None
    return math_verify


def math_scorer() -> str:
    """Which rule compares ``math`` answers: ``math-verify VERSION`` or ``string`` (the
    fallback, :func:`answers_match`); part of a math suite's fingerprint."""
    if _math_verify() is None:
        return "string"
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"math-verify {version('math-verify')}"
    except PackageNotFoundError:
        return "math-verify"


def math_answers_match(prediction: str | None, answer_key: str) -> bool:
    """Whether ``prediction`` and ``answer_key`` are the same mathematical answer: equal
    after normalisation, or (with ``math-verify``) equal as parsed expressions, sets or
    numbers (``\\frac{1}{2}`` = ``0.5``, ``(x+1)^2`` = ``x^2+2x+1``, ``50\\%`` = ``0.5``)."""
    if prediction is None:
        return False
    if answers_match(prediction, answer_key):
        return True
    verifier = _math_verify()
    if verifier is None:
        return False
    gold = verifier.parse(f"${answer_key}$")
    found = verifier.parse(f"${prediction}$")
    return bool(gold and found and verifier.verify(gold, found))


def contains_phrase(text: str, answer_key: str) -> bool:
    """Does ``text`` contain ``answer_key`` as whole words (after normalisation)?"""
    key = normalize_answer(answer_key)
    if not key:
        return False
    words = " ".join(normalize_answer(w) for w in text.split())
    return f" {key} " in f" {' '.join(words.split())} "


def check_extractor(extractor: str) -> str:
    """Validate an extractor name (or ``regex:PATTERN``); return it unchanged."""
    if extractor in EXTRACTORS:
        return extractor
    if extractor.startswith("regex:"):
        try:
            re.compile(extractor[len("regex:"):])
        except re.error as exc:
            raise ConfigError(f"extractor regex is invalid: {exc} (flag --extractor)") from None
        return extractor
    raise ConfigError(f"extractor must be one of {', '.join(EXTRACTORS)} or regex:PATTERN, "
                      f"got {extractor!r} (flag --extractor)")


def extract_answer(text: str, extractor: str = "auto", answer_key: str | None = None) -> str | None:
    """Extract the final answer from a generation; None when no answer can be parsed.

    With ``contains`` (and ``auto`` on a non-numeric key without ``\\boxed{}``), the
    "extracted" answer is the key itself when it appears in the text.
    """
    check_extractor(extractor)
    if extractor.startswith("regex:"):
        matches = list(re.finditer(extractor[len("regex:"):], text))
        if not matches:
            return None
        last = matches[-1]
        return last.group(1) if last.groups() else last.group(0)
    if extractor == "boxed":
        return extract_boxed(text)
    if extractor == "math":
        boxed = extract_boxed(text)
        return boxed if boxed is not None else extract_last_number(text)
    if extractor == "number":
        return extract_last_number(text)
    if extractor == "auto":
        boxed = extract_boxed(text)
        if boxed is not None:
            return boxed
        if answer_key is not None and as_number(answer_key) is not None:
            return extract_last_number(text)
    if answer_key is None:
        return None
    return answer_key if contains_phrase(text, answer_key) else None


def is_correct(text: str, answer_key: str, extractor: str = "auto") -> bool:
    """Does the generation ``text`` carry the answer ``answer_key``? (The verifier.)"""
    if extractor == "math":
        return math_answers_match(extract_answer(text, extractor, answer_key), answer_key)
    return answers_match(extract_answer(text, extractor, answer_key), answer_key)
