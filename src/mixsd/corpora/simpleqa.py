"""SimpleQA adapter: open-domain factual questions as knowledge records.

Input: the upstream ``simple_qa_test_set.csv`` (columns ``metadata``, ``problem``,
``answer``; ``metadata`` is a Python dict literal with ``topic``, ``answer_type``, ``urls``),
a JSON/JSONL export with the same keys, or a ``datasets`` id. Reference answers follow the
authors' style. Splits: ``train`` (every question, or a seeded ``limit`` of them) and
``recall`` (a seeded subset of the training questions, asked verbatim).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from mixsd.config import StageConfig, option
from mixsd.corpora.common import make_rng, reference_answer
from mixsd.corpora.sources import read_rows, source_info, text_field
from mixsd.errors import ConfigError, RecordError
from mixsd.records import KnowledgeRecord

VERSION = "1"
SPLITS = ("train", "recall")
COLUMNS = ("metadata", "problem", "answer")


@dataclass
class SimpleQAConfig(StageConfig):
    """Options of the ``simpleqa`` adapter."""

    source: str | None = option(None, "SimpleQA CSV (or JSON/JSONL) file, or a datasets id "
                                "such as basicv8vc/SimpleQA when a network is available")
    dataset_split: str = option("test", "split to load when --source is a datasets id")
    limit: int | None = option(None, "keep a seeded sample of this many questions", min=1)
    recall_fraction: float = option(0.5, "fraction of training questions in the recall split",
                                    min=0.0, max=1.0)
    seed: int = option(0, "random seed (sampling for --limit and the recall split)")

    def validate(self) -> None:
        super().validate()
        if not self.source:
            raise ConfigError("source is required: a SimpleQA CSV file or a datasets id "
                              "(flag --source)")


def _metadata(raw: object, ctx: dict) -> dict:
    if raw in (None, ""):
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = ast.literal_eval(str(raw))
    except (ValueError, SyntaxError):
        raise RecordError("must be a dict literal such as {'topic': ..., 'answer_type': ...}",
                          field="metadata", **ctx) from None
    if not isinstance(value, dict):
        raise RecordError("must be a dict literal", field="metadata", **ctx)
    return value


def load_simpleqa(config: SimpleQAConfig) -> list[KnowledgeRecord]:
    """Every question of the source as a ``train`` record, ids by source row."""
    out = []
    for i, (row, ctx) in enumerate(read_rows(config.source, config.dataset_split, COLUMNS)):
        if not isinstance(row, dict):
            raise RecordError(f"a row must be an object, got {type(row).__name__}", **ctx)
        problem, answer = text_field(row, "problem", ctx), text_field(row, "answer", ctx)
        meta = _metadata(row.get("metadata"), ctx)
        out.append(KnowledgeRecord(
            id=f"simpleqa-{i:05d}", prompt=problem, answer=reference_answer(answer),
            answer_key=answer, split="train",
            metadata={"topic": meta.get("topic"), "answer_type": meta.get("answer_type"),
                      "urls": list(meta.get("urls") or []), "source_row": i + 1}))
    if not out:
        raise RecordError("no questions found", path=config.source)
    return out


def build(config: SimpleQAConfig) -> tuple[dict[str, list[KnowledgeRecord]], dict, dict]:
    """(splits, extra files, stats) of the SimpleQA corpus."""
    records = load_simpleqa(config)
    total = len(records)
    if config.limit is not None and config.limit < total:
        keep = sorted(make_rng(config.seed, "simpleqa", "limit").sample(range(total),
                                                                        config.limit))
        records = [records[i] for i in keep]
    rng = make_rng(config.seed, "simpleqa", "recall")
    picked = sorted(rng.sample(range(len(records)), round(config.recall_fraction * len(records))))
    recall = [KnowledgeRecord(id=f"{records[j].id}-recall", prompt=records[j].prompt,
                              answer=records[j].answer, answer_key=records[j].answer_key,
                              split="recall", metadata={**records[j].metadata,
                                                        "train_id": records[j].id})
              for j in picked]
    stats = {"source": source_info(config.source), "source_questions": total}
    return {"train": records, "recall": recall}, {}, stats
