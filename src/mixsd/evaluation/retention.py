"""Retention: "% retained" = score after training / score of the base model (docs/method.md).

Base scores are computed once per (base model, suite) and cached as JSON
(:class:`mixsd.artifacts.KeyedCache`), keyed by a fingerprint of the model (its folder's
files, or its weights) and of the suite's config, so every run of a comparison divides by
the same numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mixsd.artifacts import KeyedCache
from mixsd.evaluation.qa import suite_fingerprint
from mixsd.io import mixsd_home

CACHE_FILE = "base_scores.json"


def retained(after: float | None, base: float | None) -> float | None:
    """Percent of the base score kept: ``100 * after / base``.

    Returns None when it is undefined: a missing score, or a base score <= 0 (a suite the
    base model cannot do at all measures no retention; it is left out of means, not counted
    as 0% or infinity).
    """
    if after is None or base is None or base <= 0:
        return None
    return 100.0 * float(after) / float(base)


def retention_table(after: Mapping[str, float], base: Mapping[str, float]) -> dict[str, float | None]:
    """``{suite: % retained}`` for every suite scored both before and after."""
    return {name: retained(after[name], base.get(name)) for name in after if name in base}


def retention_mean(table: Mapping[str, float | None]) -> float | None:
    """Mean % retained over the suites where it is defined (None if none is)."""
    values = [v for v in table.values() if v is not None]
    return sum(values) / len(values) if values else None


def fingerprint_path(path: str | Path) -> str:
    """Fingerprint of a model folder (file names, sizes, modification times) or a hub id."""
    path = Path(path)
    if not path.exists():
        return f"id:{path}"
    h = hashlib.sha256(str(path.resolve()).encode())
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def fingerprint_weights(model: Any) -> str:
    """Fingerprint of an in-memory model: a hash of every parameter's bytes."""
    import torch

    h = hashlib.sha256()
    for name, p in model.state_dict().items():
        h.update(name.encode())
        h.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class JsonFileCache(KeyedCache):
    """A :class:`~mixsd.artifacts.KeyedCache` named ``name`` in ``cache_dir`` (default
    ``$MIXSD_HOME/cache``)."""

    def __init__(self, name: str, cache_dir: str | Path | None = None):
        super().__init__(Path(cache_dir or mixsd_home() / "cache") / name)


class BaseScoreCache:
    """Base-model suite scores on disk: ``{key: {"suite", "model", "score"}}`` in one JSON."""

    def __init__(self, cache_dir: str | Path | None = None):
        self.store = JsonFileCache(CACHE_FILE, cache_dir)
        self.path = self.store.path

    @staticmethod
    def key(model_fp: str, suite: Any) -> str:
        """The key of (model, suite): sha256 of the model's fingerprint, the suite's name and
        its config's fingerprint. The format is the one every existing cache holds, so scores
        cached before the artifact layer are still found."""
        return hashlib.sha256(f"{model_fp}|{suite.name}|{suite_fingerprint(suite)}".encode()
                              ).hexdigest()[:24]

    def get(self, model_fp: str, suite: Any) -> float | None:
        entry = self.store.get(self.key(model_fp, suite))
        return None if entry is None else float(entry["score"])

    def put(self, model_fp: str, suite: Any, score: float) -> None:
        self.store.put(self.key(model_fp, suite), {"suite": suite.name, "model": model_fp,
                                                   "score": float(score)})


def base_scores(model: Any, tokenizer: Any, suites: Mapping[str, Any], *, model_id: str | None = None,
                cache_dir: str | Path | None = None, batch_size: int = 32) -> dict[str, float]:
    """Scores of the BASE model on ``suites``, from the cache when present, else computed and
    cached. ``model_id`` is its path or hub id (fingerprinted); without it the weights are."""
    cache = BaseScoreCache(cache_dir)
    fp = fingerprint_path(model_id) if model_id else fingerprint_weights(model)
    scores = {}
    for name, suite in suites.items():
        score = cache.get(fp, suite)
        if score is None:
            score = float(suite.evaluate(model, tokenizer, batch_size=batch_size).score)
            cache.put(fp, suite, score)
        scores[name] = score
    return scores
