"""The suites registry: named evaluations that each return a score in [0, 1].

A suite is any object with a ``name`` and ``evaluate(model, tokenizer, batch_size=...)``
returning a result with ``.score`` (and ``.n``, ``.samples``). :func:`get_suites` resolves
suite specs, comma separated or as a list. The kinds are the ``suite_kinds`` registry of
:mod:`mixsd.registry`: these built-in ones (:func:`register`) and a plug-in's (the toy
world's probes, ``mixsd.toyworld.plugin``):

============================  ===============================================================
``general[:N]``               the shipped general-knowledge questions (N: an evenly spread
                              subset), scored on the base model's KNOWN set
                              (:mod:`mixsd.evaluation.general`)
``general:PATH.jsonl``        the same known-set scoring on your own records
``instruct[:PATH.jsonl]``     format compliance on simple instructions (one word, a number,
                              yes/no, a list, ...; :mod:`mixsd.evaluation.instruct`)
``math:PATH.jsonl``           records answered with ``\\boxed{}``, compared as mathematics
                              (extractor math: ``math-verify`` when installed), math layout
``mcq:PATH.jsonl``            multiple choice by log-likelihood (:mod:`mixsd.evaluation.mcq`)
``lmeval:TASK``               any lm-eval task on the in-memory model (:mod:`.lmeval`)
``records:PATH[@SPLIT]``      memorisation: records whose split is SPLIT (default: ``train``
                              or no split), greedy answers against their answer keys; PATH is
                              a records file or a corpus folder (``mixsd corpus``), whose
                              ``SPLIT.jsonl`` is read
``paraphrase:PATH``           each train record's ``paraphrases`` asked with its answer key
                              (or the records of split ``paraphrase``)
``known:SPEC``                any of these (or a plug-in's) scored on the base model's KNOWN
                              set, the items it gets right (``known:instruct``,
                              ``known:toy``; :class:`mixsd.evaluation.general.KnownSet`);
                              each suite is named ``known:NAME``
============================  ===============================================================

2-hop and retrieval splits of a corpus are ``records:CORPUS_DIR@two_hop`` or
``records:corpus.jsonl@retrieval`` (whatever split names the corpus uses). The returned dict is keyed by the spec as written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

from mixsd.errors import ConfigError, MixsdError
from mixsd.evaluation.qa import QASuite
from mixsd.records import KnowledgeRecord, read_records
from mixsd.registry import REGISTRIES, Registries, SuiteKind

TRAIN_SPLITS = (None, "", "train")


class Suite(Protocol):
    """What every suite provides."""

    name: str

    def evaluate(self, model: Any, tokenizer: Any, *, batch_size: int = 32) -> Any: ...


def split_specs(names: str | Iterable[str]) -> list[str]:
    """``"general,math:a.jsonl"`` or a list of specs (each may hold commas) -> a flat list."""
    items = [names] if isinstance(names, str) else list(names)
    specs = [s.strip() for item in items for s in str(item).split(",") if s.strip()]
    if not specs:
        raise ConfigError("no suite given (flag --suite)")
    return specs


def train_records(records: list[KnowledgeRecord]) -> list[KnowledgeRecord]:
    """The training questions: records without a split or with split ``train``."""
    return [r for r in records if r.split in TRAIN_SPLITS]


def paraphrase_records(records: list[KnowledgeRecord]) -> list[KnowledgeRecord]:
    """One record per paraphrase of each record, with the same answer key."""
    out = []
    for rec in records:
        for k, text in enumerate(rec.paraphrases):
            out.append(KnowledgeRecord(id=f"{rec.id}#p{k + 1}", prompt=text, answer=rec.answer,
                                       answer_key=rec.answer_key, subject=rec.subject,
                                       split="paraphrase", metadata=dict(rec.metadata)))
    return out


def memorization_suites(records: list[KnowledgeRecord], *, extractor: str = "auto",
                        max_new_tokens: int = 64, guidance: str = "knowledge",
                        chat: dict[str, Any] | None = None) -> dict[str, QASuite]:
    """``memorization`` (train questions), ``paraphrase`` (the train records' ``paraphrases``
    plus any records of split ``paraphrase``) and one suite per other split found in
    ``records`` (e.g. ``two_hop``, ``retrieval``); ``chat``: the chat settings given
    (:func:`mixsd.prompts.chat_options`)."""
    opts = {"extractor": extractor, "max_new_tokens": max_new_tokens, "guidance": guidance,
            "chat": dict(chat or {})}
    train = train_records(records)
    suites = {"memorization": QASuite("memorization", train, **opts)} if train else {}
    para = paraphrase_records(train) + [r for r in records if r.split == "paraphrase"]
    if para:
        suites["paraphrase"] = QASuite("paraphrase", para, **opts)
    other = {r.split for r in records if r.split not in TRAIN_SPLITS and r.split != "paraphrase"}
    for split in sorted(other):
        suites[split] = QASuite(split, [r for r in records if r.split == split], **opts)
    return suites


def _path(spec: str, rest: str) -> Path:
    if not rest:
        raise ConfigError(f"suite {spec!r} needs a file: {spec.split(':')[0]}:PATH.jsonl "
                          "(flag --suite)")
    return Path(rest)


def _corpus_split(folder: Path, split: str) -> list[KnowledgeRecord] | None:
    """Records of one split of a corpus folder (``manifest.json`` or ``SPLIT.jsonl``)."""
    try:
        files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        files = {p.stem: p.name for p in folder.glob("*.jsonl")}
    if split not in files:
        return None
    return read_records(folder / files[split])


def load_split(spec: str, path: Path, split: str | None) -> list[KnowledgeRecord]:
    """Records of ``split`` from a records file or a corpus folder.

    Without a split: the train records (split empty or ``train``); a file holding no train
    records (one split file of a corpus folder, e.g. ``two_hop.jsonl``) gives all its records.
    """
    if path.is_dir():
        found = _corpus_split(path, split or "train")
        if found is None:
            raise MixsdError(f"suite {spec!r}: {path} has no split {split or 'train'!r}")
        return found
    records = read_records(path)
    if split:
        chosen = [r for r in records if r.split == split]
    else:
        chosen = train_records(records) or records
    if not chosen:
        raise MixsdError(f"suite {spec!r}: no records with split {split!r} in {path}")
    return chosen


def _qa(spec: str, records: list[KnowledgeRecord], opts: dict) -> dict[str, Any]:
    return {spec: QASuite(spec, records, extractor=opts.get("extractor", "auto"),
                          max_new_tokens=opts.get("max_new_tokens", 64),
                          guidance=opts.get("guidance", "knowledge"),
                          chat=dict(opts.get("chat") or {}))}


def _records(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    path, _, split = rest.partition("@")
    return _qa(spec, load_split(spec, _path(spec, path), split or None), opts)


def _paraphrase(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    path = _path(spec, rest)
    if path.is_dir():
        records = _corpus_split(path, "paraphrase") or paraphrase_records(
            load_split(spec, path, None))
    else:
        every = read_records(path)
        records = (paraphrase_records(train_records(every))
                   or [r for r in every if r.split == "paraphrase"])
    if not records:
        raise MixsdError(f"suite {spec!r}: no paraphrases in {rest} (neither a 'paraphrases' "
                         "field nor a 'paraphrase' split)")
    return _qa(spec, records, opts)


def _math(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    records = read_records(_path(spec, rest))
    return {spec: QASuite(spec, records, extractor="math",
                          max_new_tokens=opts.get("math_max_new_tokens", 512), guidance="math",
                          chat=dict(opts.get("chat") or {}))}


def _mcq(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    from mixsd.evaluation.mcq import MCQSuite, read_mcq

    return {spec: MCQSuite(spec, read_mcq(_path(spec, rest)),
                           guidance=opts.get("mcq_guidance", "knowledge"),
                           normalize=opts.get("mcq_normalize", "none"),
                           chat=dict(opts.get("chat") or {}))}


def _lmeval(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    from mixsd.evaluation.lmeval import LMEvalSuite

    if not rest:
        raise ConfigError("suite 'lmeval:' needs a task name: lmeval:TASK (flag --suite)")
    return {spec: LMEvalSuite(spec, rest, include_path=opts.get("lmeval_include"),
                              num_fewshot=opts.get("num_fewshot"), limit=opts.get("limit"),
                              metric=opts.get("lmeval_metric"),
                              chat_template=bool(opts.get("lmeval_chat_template")),
                              fewshot_as_multiturn=opts.get("lmeval_fewshot_as_multiturn",
                                                            True),
                              gen_kwargs=dict(opts.get("lmeval_gen_kwargs") or {}),
                              unsafe_code=bool(opts.get("lmeval_unsafe_code")),
                              chat=dict(opts.get("chat") or {}))}


def _general(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    from mixsd.evaluation.general import KnownSetSuite, general_suite

    budget = opts.get("general_max_new_tokens", 24)
    if not rest or rest.isdigit():
        return {spec: general_suite(spec, max_new_tokens=budget,
                                    limit=int(rest) if rest else None, chat=opts.get("chat"))}
    return {spec: KnownSetSuite(spec, load_split(spec, Path(rest), None),
                                extractor=opts.get("extractor", "auto"), max_new_tokens=budget,
                                guidance=opts.get("guidance", "knowledge"),
                                chat=dict(opts.get("chat") or {}))}


def _known(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    from mixsd.evaluation.general import KnownSet

    found = {}
    for name, suite in get_suites([rest], **opts).items():
        whole = suite.suite if isinstance(suite, KnownSet) else suite  # known:general
        found[f"known:{name}"] = KnownSet(f"known:{name}", whole)
    return found


def _check_known(spec: str, rest: str, flag: str) -> None:
    if not rest:
        raise ConfigError(f"suite 'known:' needs a suite: known:SPEC (e.g. known:instruct) "
                          f"(flag {flag})")
    check_suites([rest], flag=flag)


def _instruct(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    from mixsd.evaluation.instruct import instruction_suite

    return {spec: instruction_suite(spec, Path(rest) if rest else None,
                                    max_new_tokens=opts.get("instruct_max_new_tokens", 48),
                                    chat=opts.get("chat"))}


# kinds whose argument is a file or folder that must exist (``general`` and ``instruct``
# take one optionally: ``general:N`` is a count)
_PATH_KINDS = ("records", "paraphrase", "math", "mcq")


def _check_builtin(spec: str, rest: str, flag: str) -> None:
    kind = spec.partition(":")[0]
    path = rest.partition("@")[0] if kind == "records" else rest
    if kind in _PATH_KINDS or (kind in ("general", "instruct") and rest and not rest.isdigit()):
        if not path:
            raise ConfigError(f"suite {spec!r} needs a file: {kind}:PATH.jsonl (flag {flag})")
        if not Path(path).exists():
            raise ConfigError(f"suite {spec!r}: file not found: {path} (flag {flag})")
    if kind == "lmeval" and not rest:
        raise ConfigError(f"suite 'lmeval:' needs a task name: lmeval:TASK (flag {flag})")


def register(r: Registries) -> None:
    """The built-in plug-in of suites: the kinds of the module docstring."""
    for name, build in (("general", _general), ("instruct", _instruct), ("math", _math),
                        ("mcq", _mcq), ("lmeval", _lmeval), ("records", _records),
                        ("paraphrase", _paraphrase)):
        usage = name if name in ("general", "instruct") else name + ":..."
        r.suite_kinds.register(name, SuiteKind(build, _check_builtin, usage))
    r.suite_kinds.register("known", SuiteKind(_known, _check_known, "known:..."))


def check_suites(names: str | Iterable[str], *, flag: str = "--suite") -> list[str]:
    """Validate suite specs before any model loads: the kind, a name where the kind needs
    one, that a suite's file exists and whatever else the kind checks (a plug-in probe's
    name); return the flat list of specs."""
    specs = split_specs(names)
    for spec in specs:
        kind, _, rest = spec.partition(":")
        found = REGISTRIES.suite_kinds.find(kind)
        if found is None:
            usages = [REGISTRIES.suite_kinds.get(k).usage or k
                      for k in REGISTRIES.suite_kinds.names()]
            raise ConfigError(f"unknown suite {spec!r}; a suite is one of "
                              f"{', '.join(usages)} (flag {flag})")
        if found.check is not None:
            found.check(spec, rest, flag)
    return specs


def get_suites(names: str | Iterable[str], **opts: Any) -> dict[str, Suite]:
    """Resolve suite specs (see the module docstring) into ``{spec: suite}``.

    Options: ``chat`` (the chat settings given, :func:`mixsd.prompts.chat_options`, for
    every suite that renders prompts), ``extractor``, ``max_new_tokens``, ``guidance``
    (records/paraphrase suites),
    ``math_max_new_tokens`` (default 512), ``mcq_guidance``, ``mcq_normalize`` (none|chars),
    ``lmeval_include`` (task YAML folder, added to lm-eval's built-in tasks), ``num_fewshot``,
    ``limit``, ``lmeval_metric``, ``lmeval_chat_template``, ``lmeval_fewshot_as_multiturn``,
    ``lmeval_gen_kwargs``, ``lmeval_unsafe_code`` (:class:`~mixsd.evaluation.lmeval.LMEvalSuite`),
    ``general_max_new_tokens`` (default 24), ``instruct_max_new_tokens`` (default 48) and
    those of plug-in kinds (the toy world's ``toy_items`` and ``toy_seed``).
    """
    suites: dict[str, Suite] = {}
    for spec in check_suites(names):
        kind, _, rest = spec.partition(":")
        suites.update(REGISTRIES.suite_kinds.get(kind).build(spec, rest, opts))
    return suites
