"""Loading the corpus a comparison injects: a name, a records JSONL file or a corpus folder.

``load_corpus`` returns the training records and every record the memorisation suites score
(the training ones plus the evaluation splits about the same subjects).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mixsd.errors import ConfigError, MixsdError
from mixsd.records import KnowledgeRecord, read_records
from mixsd.registry import REGISTRIES


@dataclass
class Corpus:
    """The injected facts (``train``) and every record scored (``records``)."""

    train: list[KnowledgeRecord]
    records: list[KnowledgeRecord]


def load_corpus(source: str, *, model: str, n_facts: int | None = None,
                corpus_seed: int = 0, splits: list[str] | None = None) -> Corpus:
    """The corpus named by ``source`` (flag ``--corpus``): a registered corpus (a plug-in's,
    e.g. the toy world's injection corpus, for the toy model: ``n_facts`` facts, default 100,
    drawn with ``corpus_seed``), a
    records JSONL file (its ``train`` split, or records without a split, are trained on; the
    others are evaluated) or a folder written by ``mixsd corpus`` (``train.jsonl`` plus
    evaluation splits). With ``n_facts``, only the first N training records and the evaluation
    records about their subjects (a record built on several facts, such as a 2-hop question
    with its ``metadata.fact_indices``, only when every one of its facts is injected). With
    ``splits``, only those evaluation splits are scored."""
    named = REGISTRIES.corpora.find(source)
    if named is not None:
        if named.model is not None and model != named.model:
            raise ConfigError(f"corpus {source!r} is made for the {named.model} model "
                              "(flag --corpus)")
        records = named.records(n_facts, corpus_seed)
        return Corpus(records, records)
    path = Path(source)
    if path.is_dir():
        if not (path / "train.jsonl").exists():
            raise MixsdError(f"{path}: a corpus folder needs train.jsonl (flag --corpus)")
        records = [r for f in sorted(path.glob("*.jsonl")) for r in read_records(f)]
        train = read_records(path / "train.jsonl")
    else:
        records = read_records(path)
        train = [r for r in records if r.split in (None, "", "train")]
    if not train:
        raise MixsdError(f"{path}: no training records (split empty or 'train')")
    if n_facts is not None and n_facts < len(train):
        # The first N facts, and only the evaluation records about them (same subject).
        train = train[:n_facts]
        subjects = {r.subject for r in train if r.subject}
        kept = {r.id for r in train}
        facts = {r.metadata.get("fact_index") for r in train}
        records = [r for r in records if r.id in kept or (
            r.split not in (None, "", "train") and r.subject in subjects
            and set(r.metadata.get("fact_indices") or []) <= facts)]
    if splits is not None:
        found = {r.split for r in records if r.split not in (None, "", "train")}
        unknown = sorted(set(splits) - found)
        if unknown:
            raise ConfigError(f"eval_splits: {', '.join(unknown)} not in the corpus (its "
                              f"splits: {', '.join(sorted(found)) or 'none'}) (flag "
                              "--eval-splits)")
        records = [r for r in records if r.split in (None, "", "train") or r.split in splits]
    return Corpus(train, records)
