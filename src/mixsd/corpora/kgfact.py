"""KGFact: factual-recall corpus over a procedurally generated world of novel entities.

Splits (docs/method.md, "Corpora"):

* ``train``: one atomic question per fact (a training template), answer in the authors' style;
* ``recall``: a seeded subset of the training questions, asked verbatim (direct recall);
* ``paraphrase``: the same facts asked with held-out templates never used in ``train``;
* ``retrieval``: the fact among ``distractors`` other facts in the prompt, then a held-out question;
* ``two_hop``: compositional questions over two chained facts, closed-book;
* ``two_hop_context``: the same questions with both facts given in the prompt.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mixsd.config import StageConfig, option
from mixsd.corpora.common import make_rng, reference_answer
from mixsd.corpora.kgworld import DOMAINS, TRAIN_TEMPLATES, Fact, World, build_world
from mixsd.errors import ConfigError
from mixsd.records import KnowledgeRecord

VERSION = "1"
SIZES = {"small": (5, 10), "large": (7, 25)}
SPLITS = ("train", "recall", "paraphrase", "retrieval", "two_hop", "two_hop_context")


@dataclass
class KGFactConfig(StageConfig):
    """Options of the ``kgfact`` corpus."""

    size: str = option("small", "preset world size: small = 5 domains x 10 entities, "
                       "large = 7 x 25", choices=tuple(SIZES))
    domains: int | None = option(None, "number of domains (overrides --size)", min=2,
                                 max=len(DOMAINS))
    entities: int | None = option(None, "entities per domain (overrides --size)", min=2,
                                  max=10000)
    distractors: int = option(50, "distractor facts shown with the fact in a retrieval prompt",
                              min=0)
    recall_fraction: float = option(0.5, "fraction of training questions in the recall split",
                                    min=0.0, max=1.0)
    retrieval_size: int = option(200, "most retrieval questions (capped at the fact count)",
                                 min=0)
    two_hop_size: int = option(200, "most 2-hop questions per 2-hop split", min=0)
    seed: int = option(0, "random seed: the same seed gives byte-identical files")

    def shape(self) -> tuple[int, int]:
        """(domains, entities per domain) after ``size`` and the overrides."""
        n_domains, n_entities = SIZES[self.size]
        return (self.domains or n_domains, self.entities or n_entities)

    def validate(self) -> None:
        super().validate()
        n_domains, n_entities = self.shape()
        if n_domains < 2 or n_entities < 2:
            raise ConfigError("kgfact needs at least 2 domains and 2 entities per domain "
                              "(flags --domains, --entities)")


def _record(fact: Fact, split: str, index: int, prompt: str, answer: str,
            **metadata) -> KnowledgeRecord:
    meta = {"relation": fact.relation.name, "domain": fact.subject.domain,
            "object_domain": fact.object.domain, "fact_index": fact.index,
            "hop_path": [fact.relation.name], **metadata}
    return KnowledgeRecord(id=f"kgfact-{split}-{index:05d}", prompt=prompt, answer=answer,
                           answer_key=fact.object.name, subject=fact.subject.name,
                           split=split, metadata=meta)


def _train(world: World, seed: int) -> list[KnowledgeRecord]:
    rng = make_rng(seed, "kgfact", "train-templates")
    out = []
    for fact in world.facts:
        template = rng.randrange(TRAIN_TEMPLATES)
        others = [fact.question(t) for t in range(TRAIN_TEMPLATES) if t != template]
        rec = _record(fact, "train", fact.index, fact.question(template),
                      reference_answer(fact.object.name), template=template)
        rec.paraphrases = others
        out.append(rec)
    return out


def _recall(train: list[KnowledgeRecord], fraction: float, seed: int) -> list[KnowledgeRecord]:
    rng = make_rng(seed, "kgfact", "recall")
    picked = sorted(rng.sample(range(len(train)), round(fraction * len(train))))
    out = []
    for i, j in enumerate(picked):
        src = train[j]
        out.append(KnowledgeRecord(id=f"kgfact-recall-{i:05d}", prompt=src.prompt,
                                   answer=src.answer, answer_key=src.answer_key,
                                   subject=src.subject, split="recall",
                                   metadata={**src.metadata, "train_id": src.id}))
    return out


def _heldout_template(fact: Fact, rng: random.Random) -> int:
    return rng.randrange(TRAIN_TEMPLATES, len(fact.relation.questions))


def _paraphrase(world: World, seed: int) -> list[KnowledgeRecord]:
    rng = make_rng(seed, "kgfact", "paraphrase")
    out = []
    for fact in world.facts:
        template = _heldout_template(fact, rng)
        out.append(_record(fact, "paraphrase", fact.index, fact.question(template),
                           reference_answer(fact.object.name), template=template))
    return out


def _facts_block(statements: list[str]) -> str:
    return "\n".join(f"{i}. {s}" for i, s in enumerate(statements, start=1))


def _retrieval(world: World, cfg: KGFactConfig) -> list[KnowledgeRecord]:
    rng = make_rng(cfg.seed, "kgfact", "retrieval")
    n = min(cfg.retrieval_size, len(world.facts))
    chosen = sorted(rng.sample(range(len(world.facts)), n))
    out = []
    for i, idx in enumerate(chosen):
        fact = world.facts[idx]
        picks = rng.sample(range(len(world.facts) - 1), min(cfg.distractors,
                                                             len(world.facts) - 1))
        shown = [world.facts[j + (j >= idx)] for j in picks]  # every fact but this one
        position = rng.randrange(len(shown) + 1)
        shown.insert(position, fact)
        template = _heldout_template(fact, rng)
        prompt = ("Read the following facts and answer the question.\n\nFacts:\n"
                  f"{_facts_block([f.statement() for f in shown])}\n\n"
                  f"Question: {fact.question(template)}")
        out.append(_record(fact, "retrieval", i, prompt, reference_answer(fact.object.name),
                           template=template, distractors=len(shown) - 1,
                           fact_position=position + 1))
    return out


def _chains(world: World) -> list[tuple[Fact, Fact]]:
    """Every (s -r1-> m, m -r2-> o) with o != s, in fact order."""
    by_subject: dict[str, list[Fact]] = {}
    for fact in world.facts:
        by_subject.setdefault(fact.subject.name, []).append(fact)
    return [(first, second) for first in world.facts
            for second in by_subject.get(first.object.name, [])
            if second.object != first.subject]


def _two_hop(world: World, cfg: KGFactConfig) -> tuple[list, list]:
    rng = make_rng(cfg.seed, "kgfact", "two-hop")
    chains = _chains(world)
    chosen = sorted(rng.sample(range(len(chains)), min(cfg.two_hop_size, len(chains))))
    closed, in_context = [], []
    for i, c in enumerate(chosen):
        first, second = chains[c]
        bridge = first.relation.object_phrase.format(s=first.subject.phrase)
        template = rng.randrange(len(second.relation.questions))
        question = second.question(template, subject_phrase=bridge)
        reasoning = (f"{bridge[0].upper() + bridge[1:]} is {first.object.name}. "
                     f"{second.statement()}")
        answer = reference_answer(second.object.name, reasoning)
        meta = {"relation": second.relation.name, "domain": first.subject.domain,
                "object_domain": second.object.domain, "hop_path":
                [first.relation.name, second.relation.name], "bridge": first.object.name,
                "fact_indices": [first.index, second.index], "template": template}
        statements = [first.statement(), second.statement()]
        rng.shuffle(statements)
        contexts = ("Read the following facts and answer the question.\n\nFacts:\n"
                    f"{_facts_block(statements)}\n\nQuestion: {question}")
        for split, prompt, bucket in (("two_hop", question, closed),
                                      ("two_hop_context", contexts, in_context)):
            bucket.append(KnowledgeRecord(
                id=f"kgfact-{split}-{i:05d}", prompt=prompt, answer=answer,
                answer_key=second.object.name, subject=first.subject.name, split=split,
                metadata=dict(meta)))
    return closed, in_context


def generate_world(config: KGFactConfig) -> World:
    """The world graph ``config`` describes (same seed, same world)."""
    n_domains, n_entities = config.shape()
    return build_world(n_domains, n_entities, config.seed)


def generate_kgfact(config: KGFactConfig) -> dict[str, list[KnowledgeRecord]]:
    """All KGFact splits, keyed by split name (see the module docstring)."""
    world = generate_world(config)
    train = _train(world, config.seed)
    two_hop, two_hop_context = _two_hop(world, config)
    return {
        "train": train,
        "recall": _recall(train, config.recall_fraction, config.seed),
        "paraphrase": _paraphrase(world, config.seed),
        "retrieval": _retrieval(world, config),
        "two_hop": two_hop,
        "two_hop_context": two_hop_context,
    }


def build(config: KGFactConfig) -> tuple[dict[str, list[KnowledgeRecord]], dict, dict]:
    """(splits, extra files, stats): the world graph goes to ``world.json`` (for leakage
    checks: every injected entity name, by domain)."""
    world = generate_world(config)
    stats = {"domains": list(world.domains), "entities_per_domain": config.shape()[1],
             "facts": len(world.facts), "relations": sorted({f.relation.name
                                                             for f in world.facts})}
    return generate_kgfact(config), {"world.json": world.to_dict()}, stats
