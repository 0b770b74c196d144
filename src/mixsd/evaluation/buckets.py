"""Error buckets for wrong held-out answers (docs/method.md, "Measurements"), in priority order.

Each wrong answer goes to the FIRST bucket whose test it meets:

1. ``format``: no parseable answer. With extractor ``boxed`` no ``\\boxed{}``; ``number`` no
   number; ``auto`` neither a ``\\boxed{}`` nor (for a numeric key) a number nor (for a word
   key) any text; ``contains`` an empty answer; ``regex:P`` no match of P.
2. ``leakage``: an injected name (see :func:`injected_names`) appears, as whole words, in the
   answer while it appears neither in the question nor in the answer key.
3. ``collapse``: the base model reasoned on this item and the model does not. Operationally:
   the base model's answer to the same item has at least ``min_reasoning_words`` words and the
   model's answer is shorter than ``collapse_ratio`` times it (default: under half as long).
   Without the base model's answer an item cannot collapse.
4. ``genuine``: everything else (a wrong answer given in the expected form).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mixsd.answers import as_number, extract_answer, extract_boxed, extract_last_number
from mixsd.evaluation.samples import read_sample_log
from mixsd.records import KnowledgeRecord

BUCKETS = ("format", "leakage", "collapse", "genuine")


def has_parseable_answer(text: str, extractor: str = "auto", answer_key: str | None = None) -> bool:
    """Does ``text`` hold an answer in the form ``extractor`` expects (right or wrong)?"""
    if extractor == "boxed":
        return extract_boxed(text) is not None
    if extractor == "number":
        return extract_last_number(text) is not None
    if extractor.startswith("regex:"):
        return extract_answer(text, extractor) is not None
    if extractor == "auto":
        if extract_boxed(text) is not None:
            return True
        if answer_key is not None and as_number(answer_key) is not None:
            return extract_last_number(text) is not None
    return bool(text.strip())


def injected_names(records: Iterable[KnowledgeRecord], min_chars: int = 3) -> set[str]:
    """Names that only exist because they were injected: the records' subjects and their
    non-numeric answer keys (at least ``min_chars`` characters)."""
    names = set()
    for rec in records:
        for name in (rec.subject, rec.answer_key):
            if name and len(name.strip()) >= min_chars and as_number(name) is None:
                names.add(name.strip())
    return names


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, flags=re.IGNORECASE) is not None


def classify_error(sample: Mapping[str, Any], *, extractor: str = "auto",
                   names: Iterable[str] = (), base_generation: str | None = None,
                   min_reasoning_words: int = 8, collapse_ratio: float = 0.5) -> str:
    """The bucket of one WRONG answer (``sample`` has ``generation``, ``prompt``,
    ``answer_key``, as in :class:`~mixsd.evaluation.qa.QAResult` samples)."""
    text = sample.get("generation") or ""
    key = sample.get("answer_key")
    if not has_parseable_answer(text, extractor, key):
        return "format"
    allowed = f"{sample.get('prompt', '')} {key or ''}"
    if any(_mentions(text, n) and not _mentions(allowed, n) for n in names):
        return "leakage"
    if base_generation is not None:
        base_words = len(base_generation.split())
        if base_words >= min_reasoning_words and len(text.split()) < collapse_ratio * base_words:
            return "collapse"
    return "genuine"


def error_buckets(samples: Sequence[Mapping[str, Any]], *, extractor: str = "auto",
                  names: Iterable[str] = (),
                  base_samples: Sequence[Mapping[str, Any]] | None = None,
                  **thresholds: Any) -> dict[str, int]:
    """Count the wrong answers of ``samples`` per bucket (correct ones are not counted).

    ``base_samples`` are the base model's samples on the same suite, joined by ``id``.
    """
    names = list(names)
    base = {s["id"]: s.get("generation", "") for s in base_samples or []}
    counts = dict.fromkeys(BUCKETS, 0)
    for sample in samples:
        if sample.get("correct"):
            continue
        bucket = classify_error(sample, extractor=extractor, names=names,
                                base_generation=base.get(sample.get("id")), **thresholds)
        counts[bucket] += 1
    return counts


def buckets_from_samples(samples_dir: str | Path, epoch: int, suites: Mapping[str, Any], *,
                         base_samples_dir: str | Path | None = None, base_epoch: int = 0,
                         names: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Error buckets per held-out suite from the per-sample logs that
    :class:`~mixsd.evaluation.callback.EpochEvaluator` writes (``samples_dir/epoch-N/``).

    ``base_samples_dir`` holds the base model's logs (its evaluator's epoch ``base_epoch``),
    needed for the ``collapse`` bucket. Suites without a log (or without generations, e.g.
    lm-eval tasks) are skipped.
    """
    names = list(names)
    out: dict[str, dict[str, int]] = {}
    for name, suite in suites.items():
        samples = read_sample_log(samples_dir, name, epoch)
        if not samples or "generation" not in samples[0]:
            continue
        base = None
        if base_samples_dir is not None:
            base = read_sample_log(base_samples_dir, name, base_epoch)
        out[name] = error_buckets(samples, extractor=getattr(suite, "extractor", "auto"),
                                  names=names, base_samples=base)
    return out
