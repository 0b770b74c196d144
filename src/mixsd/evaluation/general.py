"""General knowledge a real model already has: the shipped suite, held to its KNOWN set.

``general`` is a suite of ~400 short questions on public, stable facts (capitals, chemical
symbols, authors, planets, units, arithmetic, opposites, ...), written for mixsd and shipped
in ``mixsd/evaluation/data/general_knowledge.jsonl``. A model cannot lose knowledge it never
had, so retention is measured on the items the BASE model answers correctly (its known set):
:meth:`KnownSetSuite.prepare` answers every item with the base model once (cached per base
model in ``$MIXSD_HOME/cache/known_sets.json``, a :class:`~mixsd.evaluation.retention.JsonFileCache`), after which :meth:`~KnownSetSuite.evaluate`
scores only the known items. The base model's accuracy on the whole suite is kept in
:meth:`~KnownSetSuite.info` and reported beside the retention. :class:`KnownSet` holds any
suite that lists its questions to its known set the same way (the suite kind
``known:SPEC``, e.g. ``known:instruct``, ``known:toy``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.evaluation.qa import QAResult, QASuite, suite_fingerprint
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


def _item_id(item: Any) -> str:
    return str(item["id"] if isinstance(item, dict) else item.id)


def _item_field(suite: Any) -> str | None:
    """The dataclass field holding a suite's questions (``records`` or ``items``), if any."""
    names = {f.name for f in dataclasses.fields(suite)} if dataclasses.is_dataclass(suite) \
        else set()
    return next((n for n in ("records", "items") if n in names), None)


def suite_items(suite: Any) -> list[Any]:
    """Every question of a suite that lists them (records or items); ``[]`` otherwise."""
    name = _item_field(suite)
    return list(getattr(suite, name)) if name else []


def subset(suite: Any, ids: Any) -> Any:
    """A copy of ``suite`` holding only the questions whose id is in ``ids``."""
    name = _item_field(suite)
    if name is None:
        raise MixsdError(f"suite {getattr(suite, 'name', suite)!r} lists no questions, so it "
                         "cannot be held to a known set")
    wanted = set(ids)
    return dataclasses.replace(suite, **{name: [x for x in getattr(suite, name)
                                                if _item_id(x) in wanted]})


class KnownSet:
    """A suite restricted, once prepared, to the items its base model gets right.

    ``suite`` is any suite whose questions are a ``records`` or ``items`` field and whose
    samples carry ``id`` and ``correct`` (QA, instruction, multiple-choice suites). Before
    :meth:`prepare` it scores every item (plain accuracy); after, only the known set, so the
    base model scores 1.0 by construction and a trained model's score is the share of the
    base model's knowledge it kept.
    """

    def __init__(self, name: str, suite: Any, known_ids: list[str] | None = None,
                 base_accuracy: float | None = None):
        if _item_field(suite) is None:
            subset(suite, [])  # the one error of a suite that lists no questions
        self.name = name
        self.suite = suite
        self.extractor = getattr(suite, "extractor", "auto")  # error buckets read it
        self.known_ids = None if known_ids is None else list(known_ids)
        self.base_accuracy = base_accuracy
        self._scored = suite if known_ids is None else subset(suite, known_ids)

    @property
    def records(self) -> list[Any]:
        """The items scored now: the known set once prepared, else all of them."""
        return suite_items(self._scored)

    @property
    def prompts(self) -> list[str]:
        """The questions scored now (held-out drift prompts)."""
        found = getattr(self._scored, "prompts", None)
        return list(found) if found is not None else [
            getattr(r, "prompt", None) or r["prompt"] for r in self.records]

    @property
    def prepared(self) -> bool:
        return self.known_ids is not None

    def fingerprint(self) -> str:
        """Changes with the items, the scoring, and (once prepared) the known set."""

        known = "" if self.known_ids is None else ",".join(self.known_ids)
        return hashlib.sha256(f"{suite_fingerprint(self.suite)}|{known}".encode()
                              ).hexdigest()[:16]

    def reference_pairs(self) -> list[tuple[str, str]]:
        return self._scored.reference_pairs()

    def info(self) -> dict[str, Any]:
        """What the report shows beside the retention: base accuracy and known-set size."""
        return {"items": len(suite_items(self.suite)), "known": len(self.records),
                "base_accuracy": self.base_accuracy}

    def prepare(self, base_model: Any, tokenizer: Any, *, model_fingerprint: str,
                batch_size: int = 32, cache_dir: str | Path | None = None) -> KnownSet:
        """Find the known set of ``base_model`` (cached under ``model_fingerprint``)."""
        from mixsd.evaluation.retention import JsonFileCache

        cache = JsonFileCache(KNOWN_CACHE, cache_dir)
        key = f"{model_fingerprint}|{suite_fingerprint(self.suite)}"
        entry = cache.get(key)
        if entry is None:
            result = self.suite.evaluate(base_model, tokenizer, batch_size=batch_size)
            entry = {"suite": self.name, "known_ids": [s["id"] for s in result.samples
                                                       if s["correct"]],
                     "base_accuracy": float(result.score)}
            cache.put(key, entry)
        self.known_ids = list(entry["known_ids"])
        self.base_accuracy = float(entry["base_accuracy"])
        self._scored = subset(self.suite, self.known_ids)
        return self

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> QAResult:
        if not self.records:  # a base model that knows nothing: no retention to measure
            return QAResult(name=self.name, score=0.0, n=0, samples=[])
        return self._scored.evaluate(model, tokenizer, batch_size=batch_size)


class KnownSetSuite(KnownSet):
    """The known set of a :class:`QASuite` of ``all_records`` (the ``general`` suite)."""

    def __init__(self, name: str, all_records: list[KnowledgeRecord], extractor: str = "auto",
                 max_new_tokens: int = 24, guidance: str = "knowledge",
                 known_ids: list[str] | None = None, base_accuracy: float | None = None,
                 chat: dict[str, Any] | None = None):
        self.all_records = list(all_records)
        self.max_new_tokens = max_new_tokens
        self.guidance = guidance
        self.chat = dict(chat or {})  # the chat settings given (QASuite.chat)
        super().__init__(name, QASuite(name, self.all_records, extractor=extractor,
                                       max_new_tokens=max_new_tokens, guidance=guidance,
                                       chat=self.chat),
                         known_ids, base_accuracy)


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
