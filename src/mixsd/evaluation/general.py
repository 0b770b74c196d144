"""General knowledge a real model already has: the shipped suite, held to its KNOWN set.

``general`` is a suite of ~400 short questions on public, stable facts (capitals, chemical
symbols, authors, planets, units, arithmetic, opposites, ...), written for mixsd and shipped
in ``mixsd/evaluation/data/general_knowledge.jsonl``. A model cannot lose knowledge it never
had, so retention is measured on the items the BASE model answers correctly (its known set):
:meth:`KnownSetSuite.prepare` answers every item with the base model once (cached per base
model in ``$MIXSD_HOME/cache/known_sets.json``, a :class:`~mixsd.evaluation.retention.JsonFileCache`), after which :meth:`~KnownSetSuite.evaluate`
scores only the known items. The base model's accuracy on the whole suite is kept in
:meth:`~KnownSetSuite.info` and reported beside the retention.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mixsd.evaluation.qa import QAResult, QASuite
from mixsd.records import KnowledgeRecord, read_records

GENERAL_FILE = "general_knowledge.jsonl"
KNOWN_CACHE = "known_sets.json"


def general_knowledge_records(categories: list[str] | None = None) -> list[KnowledgeRecord]:
    """The shipped general-knowledge questions (optionally only some ``categories``)."""
    path = resources.files("mixsd.evaluation") / "data" / GENERAL_FILE
    with resources.as_file(path) as file:
        records = read_records(file)
    if categories:
        records = [r for r in records if r.metadata.get("category") in categories]
    return records


@dataclass
class KnownSetSuite:
    """A :class:`QASuite` restricted, once prepared, to the items its base model knows.

    Before :meth:`prepare` it scores every item (plain accuracy); after, only the known set,
    so the base model scores 1.0 by construction and a trained model's score is the share of
    the base model's knowledge it kept.
    """

    name: str
    all_records: list[KnowledgeRecord]
    extractor: str = "auto"
    max_new_tokens: int = 24
    guidance: str = "knowledge"
    known_ids: list[str] | None = None
    chat: dict[str, Any] = field(default_factory=dict)  # chat settings given (QASuite.chat)
    base_accuracy: float | None = None
    _qa: QASuite = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._qa = self._suite(self.all_records)

    def _suite(self, records: list[KnowledgeRecord]) -> QASuite:
        return QASuite(self.name, records, extractor=self.extractor,
                       max_new_tokens=self.max_new_tokens, guidance=self.guidance,
                       chat=self.chat)

    @property
    def records(self) -> list[KnowledgeRecord]:
        """The items scored now: the known set once prepared, else all of them."""
        return self._qa.records

    @property
    def prepared(self) -> bool:
        return self.known_ids is not None

    def fingerprint(self) -> str:
        """Changes with the items, the scoring, and (once prepared) the known set."""
        base = self._suite(self.all_records).fingerprint()
        known = "" if self.known_ids is None else ",".join(self.known_ids)
        return hashlib.sha256(f"{base}|{known}".encode()).hexdigest()[:16]

    def reference_pairs(self) -> list[tuple[str, str]]:
        return self._qa.reference_pairs()

    def info(self) -> dict[str, Any]:
        """What the report shows beside the retention: base accuracy and known-set size."""
        return {"items": len(self.all_records), "known": len(self.records),
                "base_accuracy": self.base_accuracy}

    def prepare(self, base_model: Any, tokenizer: Any, *, model_fingerprint: str,
                batch_size: int = 32, cache_dir: str | Path | None = None) -> KnownSetSuite:
        """Find the known set of ``base_model`` (cached under ``model_fingerprint``)."""
        from mixsd.evaluation.retention import JsonFileCache

        cache = JsonFileCache(KNOWN_CACHE, cache_dir)
        key = f"{model_fingerprint}|{self._suite(self.all_records).fingerprint()}"
        entry = cache.get(key)
        if entry is None:
            result = self._suite(self.all_records).evaluate(base_model, tokenizer,
                                                            batch_size=batch_size)
            entry = {"suite": self.name, "known_ids": [s["id"] for s in result.samples
                                                       if s["correct"]],
                     "base_accuracy": float(result.score)}
            cache.put(key, entry)
        self.known_ids = list(entry["known_ids"])
        self.base_accuracy = float(entry["base_accuracy"])
        wanted = set(self.known_ids)
        self._qa = self._suite([r for r in self.all_records if r.id in wanted])
        return self

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> QAResult:
        if not self._qa.records:  # a base model that knows nothing: no retention to measure
            return QAResult(name=self.name, score=0.0, n=0, samples=[])
        return self._qa.evaluate(model, tokenizer, batch_size=batch_size)


def general_suite(name: str = "general", *, categories: list[str] | None = None,
                  max_new_tokens: int = 24, limit: int | None = None,
                  chat: dict[str, Any] | None = None) -> KnownSetSuite:
    """The shipped general-knowledge suite (``limit``: every k-th item so all categories
    stay represented)."""
    records = general_knowledge_records(categories)
    if limit is not None and limit < len(records):
        step = len(records) / limit
        records = [records[int(i * step)] for i in range(limit)]
    return KnownSetSuite(name, records, extractor="auto", max_new_tokens=max_new_tokens,
                         chat=dict(chat or {}))


def prepare_suites(suites: dict[str, Any], base_model: Any, tokenizer: Any, *,
                   model_fingerprint: str, batch_size: int = 32,
                   cache_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Prepare every suite that needs its base model (known sets); return their ``info()``."""
    info = {}
    for name, suite in suites.items():
        if callable(getattr(suite, "prepare", None)):
            suite.prepare(base_model, tokenizer, model_fingerprint=model_fingerprint,
                          batch_size=batch_size, cache_dir=cache_dir)
            info[name] = suite.info()
    return info
