"""MQuAKE adapter: knowledge edits (counterfactual overwrites) and their multi-hop consequences.

Input: the upstream ``MQuAKE-CF-3k.json`` (a list of cases, each with ``requested_rewrite``
— edits with ``prompt`` (a cloze with ``{}`` for the subject), ``subject``, ``target_new``
and ``target_true`` (``{"str", "id"}``), ``question`` — plus ``questions`` (multi-hop),
``new_answer``, ``new_answer_alias`` and ``new_single_hops``), or a ``datasets`` id.

Splits:

* ``edits``: one record per distinct edit, the NEW object as the answer (the training set);
* ``multihop``: the multi-hop questions, answered with the post-edit ``new_answer``;
* ``single_hop``: the post-edit single-hop questions of each chain (when present; the
  edited hops among them repeat an edit's question, the others are facts left unedited).

Two cases that edit the same (subject, relation) to different objects cannot both hold; the
first edit wins and the later cases are left out (counted in the manifest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixsd.config import StageConfig, option
from mixsd.corpora.common import make_rng, reference_answer
from mixsd.corpora.sources import read_rows, source_info, text_field
from mixsd.errors import ConfigError, RecordError
from mixsd.records import KnowledgeRecord

VERSION = "1"
SPLITS = ("edits", "multihop", "single_hop")


@dataclass
class MQuAKEConfig(StageConfig):
    """Options of the ``mquake`` adapter."""

    source: str | None = option(None, "MQuAKE-CF-3k JSON file (a list of cases), or a "
                                "datasets id when a network is available")
    dataset_split: str = option("train", "split to load when --source is a datasets id")
    limit: int | None = option(None, "keep a seeded sample of this many cases", min=1)
    seed: int = option(0, "random seed (sampling for --limit)")

    def validate(self) -> None:
        super().validate()
        if not self.source:
            raise ConfigError("source is required: an MQuAKE JSON file or a datasets id "
                              "(flag --source)")


@dataclass
class _Edit:
    subject: str
    relation: str
    cloze: str
    question: str
    target_new: str
    target_true: str
    target_new_id: str | None


def _target(rw: dict, key: str, ctx: dict, label: str) -> tuple[str, str | None]:
    """``target_new``/``target_true``: ``{"str": ..., "id": ...}`` (a bare string is accepted)."""
    value = rw.get(key)
    if value is None:
        raise RecordError("missing required field", field=label, **ctx)
    if isinstance(value, str):
        return text_field(rw, key, ctx, label), None
    if not isinstance(value, dict):
        raise RecordError("must be an object with 'str'", field=label, **ctx)
    return text_field(value, "str", ctx, f"{label}.str"), value.get("id")


def _edit(rw: Any, ctx: dict, index: int) -> _Edit:
    name = f"requested_rewrite[{index}]"
    if not isinstance(rw, dict):
        raise RecordError("must be an object", field=name, **ctx)
    prompt = text_field(rw, "prompt", ctx, f"{name}.prompt")
    if "{}" not in prompt:
        raise RecordError("must hold '{}' where the subject goes", field=f"{name}.prompt",
                          **ctx)
    subject = text_field(rw, "subject", ctx, f"{name}.subject")
    new, new_id = _target(rw, "target_new", ctx, f"{name}.target_new")
    true, _ = _target(rw, "target_true", ctx, f"{name}.target_true")
    cloze = prompt.replace("{}", subject)
    question = rw.get("question") if isinstance(rw.get("question"), str) else None
    relation = str(rw.get("relation_id") or prompt)
    return _Edit(subject, relation, cloze, (question or cloze).strip(), new, true, new_id)


@dataclass
class _Case:
    case_id: Any
    edits: list[_Edit]
    questions: list[str]
    new_answer: str
    aliases: list[str]
    single_hops: list[tuple[str, str, list[str]]]  # (question, answer, aliases)


def _single_hops(obj: dict, ctx: dict) -> list[tuple[str, str, list[str]]]:
    hops = obj.get("new_single_hops") or []
    if not isinstance(hops, list):
        raise RecordError("must be a list of objects", field="new_single_hops", **ctx)
    out = []
    for i, hop in enumerate(hops):
        name = f"new_single_hops[{i}]"
        if not isinstance(hop, dict):
            raise RecordError("must be an object", field=name, **ctx)
        out.append((text_field(hop, "question", ctx, f"{name}.question"),
                    text_field(hop, "answer", ctx, f"{name}.answer"),
                    [str(a) for a in hop.get("answer_alias") or []]))
    return out


def _case(obj: Any, ctx: dict) -> _Case:
    """Validate one upstream case; errors name the record and the field."""
    if not isinstance(obj, dict):
        raise RecordError(f"a case must be an object, got {type(obj).__name__}", **ctx)
    rewrites = obj.get("requested_rewrite")
    if not isinstance(rewrites, list) or not rewrites:
        raise RecordError("must be a non-empty list of edits", field="requested_rewrite", **ctx)
    edits = [_edit(rw, ctx, i) for i, rw in enumerate(rewrites)]
    questions = obj.get("questions") or []
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
        raise RecordError("must be a list of strings", field="questions", **ctx)
    new_answer = text_field(obj, "new_answer", ctx) if questions else ""
    aliases = obj.get("new_answer_alias") or []
    if not isinstance(aliases, list):
        raise RecordError("must be a list of strings", field="new_answer_alias", **ctx)
    case_id = obj.get("case_id")
    return _Case(ctx["path"] if case_id is None else case_id, edits,
                 [q.strip() for q in questions if q.strip()], new_answer,
                 [str(a) for a in aliases], _single_hops(obj, ctx))


def _load_cases(config: MQuAKEConfig) -> list[tuple[Any, dict]]:
    cases = list(read_rows(config.source, config.dataset_split))
    if not cases:
        raise RecordError("no cases found", path=config.source)
    if config.limit is not None and config.limit < len(cases):
        keep = sorted(make_rng(config.seed, "mquake", "limit").sample(range(len(cases)),
                                                                      config.limit))
        cases = [cases[i] for i in keep]
    return cases


def _add_edits(case: _Case, edits: list[KnowledgeRecord],
               by_key: dict[tuple[str, str], KnowledgeRecord]) -> int:
    """Add the case's edits not seen before; return how many were duplicates."""
    duplicates = 0
    for e in case.edits:
        known = by_key.get((e.subject, e.relation))
        if known is not None:
            known.metadata["case_ids"].append(case.case_id)
            duplicates += 1
            continue
        rec = KnowledgeRecord(
            id=f"mquake-edit-{len(edits):05d}", prompt=e.question,
            answer=reference_answer(e.target_new), answer_key=e.target_new,
            subject=e.subject, split="edits",
            metadata={"case_ids": [case.case_id], "relation_id": e.relation, "cloze": e.cloze,
                      "target_true": e.target_true, "target_new_id": e.target_new_id})
        by_key[(e.subject, e.relation)] = rec
        edits.append(rec)
    return duplicates


def _add_questions(case: _Case, splits: dict[str, list[KnowledgeRecord]]) -> None:
    meta = {"case_id": case.case_id, "answer_aliases": case.aliases,
            "num_edits": len(case.edits), "edited_subjects": [e.subject for e in case.edits]}
    for i, question in enumerate(case.questions):
        splits["multihop"].append(KnowledgeRecord(
            id=f"mquake-multihop-{len(splits['multihop']):05d}", prompt=question,
            answer=reference_answer(case.new_answer), answer_key=case.new_answer,
            split="multihop", metadata={**meta, "question_index": i}))
    for i, (question, answer, aliases) in enumerate(case.single_hops):
        splits["single_hop"].append(KnowledgeRecord(
            id=f"mquake-single-{len(splits['single_hop']):05d}", prompt=question,
            answer=reference_answer(answer), answer_key=answer, split="single_hop",
            metadata={"case_id": case.case_id, "hop_index": i, "answer_aliases": aliases}))


def build(config: MQuAKEConfig) -> tuple[dict[str, list[KnowledgeRecord]], dict, dict]:
    """(splits, extra files, stats) of the MQuAKE corpus."""
    splits: dict[str, list[KnowledgeRecord]] = {name: [] for name in SPLITS}
    by_key: dict[tuple[str, str], KnowledgeRecord] = {}
    stats = {"source": source_info(config.source), "cases": 0, "conflicting_cases": 0,
             "duplicate_edits": 0}
    cases = [_case(obj, ctx) for obj, ctx in _load_cases(config)]  # validate all first
    for case in cases:
        if any((e.subject, e.relation) in by_key
               and by_key[(e.subject, e.relation)].answer_key != e.target_new
               for e in case.edits):
            stats["conflicting_cases"] += 1  # an earlier case edited this fact differently
            continue
        stats["cases"] += 1
        stats["duplicate_edits"] += _add_edits(case, splits["edits"], by_key)
        _add_questions(case, splits)
    return splits, {}, stats
