"""The untouched model's scores, measured once per folder through the same evaluator as every
epoch of every run (``OUT/base.json``), for the comparison and for `mixsd inject`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mixsd.artifacts import KeyedCache
from mixsd.evaluation.results import epoch_entry, make_base


def evaluate_base(out: Path, model: Any, tokenizer: Any, evaluator: Any,
                  suite_info: dict[str, Any] | None = None, *,
                  key: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Scores of the untouched model through the SAME evaluator as every epoch of every run,
    cached in ``OUT/base.json`` (a :class:`mixsd.artifacts.KeyedCache` under ``key``, the
    fields that decide the scores; a base.json written before the cache is read as it is)."""

    def compute() -> dict[str, Any]:
        entry = epoch_entry(0, evaluator(model, tokenizer, 0))
        return make_base(entry.scores, memorization=entry.memorization,
                         paraphrase=entry.paraphrase, splits=entry.splits,
                         suite_info=suite_info or {})

    cache = KeyedCache(out / "base.json", legacy=lambda d: d if "scores" in d else None)
    return cache.get_or_compute(dict(key or {}), compute)
