"""Evaluation suites of the toy world's capabilities, and the injection corpus.

Suites (all answered from the naive ``toy`` prompt and checked with the ``auto`` extractor):

* ``recall``: closed-book questions on known entities, in the question templates of
  pretraining;
* ``paraphrase``: the same facts asked with the held-out question template;
* ``in_context``: two facts about a never-seen entity (the asked one and the companion one)
  and a fact about another entity given in the prompt (with ``distractor_same_attribute``
  the other entity's fact is of the asked attribute, so the value must be bound to the name);
* ``arithmetic``: held-out 2-digit additions answered with worked steps (key: the sum).

The answer key never appears in the question (the key of ``in_context`` appears only in the
context, among facts of other types or entities), so echoing the question cannot pass and a
guess passes about one time in 12-30.
"""

from __future__ import annotations

import random

from mixsd.evaluation.qa import QASuite
from mixsd.records import KnowledgeRecord
from mixsd.toyworld.world import (
    ARITHMETIC_QUESTIONS,
    ATTRIBUTES,
    HELDOUT_TEMPLATE,
    QUESTIONS,
    TRAIN_TEMPLATES,
    World,
    WorldConfig,
    arithmetic_answer,
    in_context_prompt,
    own_answer,
    question,
    reference_answer,
)

SUITE_NAMES = ("recall", "paraphrase", "in_context", "arithmetic")
_WORLDS: dict[WorldConfig, World] = {}


def get_world(config: WorldConfig | None = None) -> World:
    """The (cached) world of ``config`` (default: the shipped toy model's world)."""
    config = config or WorldConfig()
    if config not in _WORLDS:
        _WORLDS[config] = World(config)
    return _WORLDS[config]


def _fact_records(world: World, n: int, rng: random.Random, templates: tuple[int, ...],
                  suite: str) -> list[KnowledgeRecord]:
    facts = [(e, a, t) for e in world.pools["known"] for a in ATTRIBUTES for t in templates]
    picked = rng.sample(facts, min(n, len(facts)))
    return [KnowledgeRecord(id=f"toy-{suite}-{i}", prompt=question(a, t, e.name),
                            answer=own_answer(e.name, a, e.attrs), answer_key=e.attrs[a],
                            subject=e.name, split="eval",
                            metadata={"attribute": a, "template": t})
            for i, (e, a, t) in enumerate(picked)]


def _in_context_records(world: World, n: int, rng: random.Random) -> list[KnowledgeRecord]:
    pool = world.pools["evaluation"]
    records = []
    while len(records) < n:
        ent, other = rng.sample(pool, 2)
        attr = rng.choice(ATTRIBUTES)
        if other.attrs[attr] == ent.attrs[attr]:
            continue
        prompt = in_context_prompt(rng, ent, other, attr, rng.randrange(len(QUESTIONS[attr])),
                                   world.config.distractor_same_attribute)
        records.append(KnowledgeRecord(
            id=f"toy-in_context-{len(records)}", prompt=prompt,
            answer=own_answer(ent.name, attr, ent.attrs), answer_key=ent.attrs[attr],
            subject=ent.name, split="eval", metadata={"attribute": attr}))
    return records


def _arithmetic_records(world: World, n: int, rng: random.Random) -> list[KnowledgeRecord]:
    pairs = rng.sample(world.heldout_pairs, min(n, len(world.heldout_pairs)))
    return [KnowledgeRecord(id=f"toy-arithmetic-{i}",
                            prompt=rng.choice(ARITHMETIC_QUESTIONS).format(a=a, b=b),
                            answer=arithmetic_answer(a, b), answer_key=str(a + b), split="eval",
                            metadata={"a": a, "b": b})
            for i, (a, b) in enumerate(pairs)]


def suite_records(n_items: int = 200, seed: int = 0,
                  world: World | None = None) -> dict[str, list[KnowledgeRecord]]:
    """The records of every suite (``n_items`` each), deterministic in ``seed``."""
    world = world or get_world()
    return {
        "recall": _fact_records(world, n_items, random.Random(f"recall-{seed}"),
                                TRAIN_TEMPLATES, "recall"),
        "paraphrase": _fact_records(world, n_items, random.Random(f"paraphrase-{seed}"),
                                    (HELDOUT_TEMPLATE,), "paraphrase"),
        "in_context": _in_context_records(world, n_items, random.Random(f"in_context-{seed}")),
        "arithmetic": _arithmetic_records(world, n_items, random.Random(f"arithmetic-{seed}")),
    }


def toy_suites(n_items: int = 200, seed: int = 0,
               world: World | None = None) -> dict[str, QASuite]:
    """The toy world's capability suites: recall, paraphrase, in_context, arithmetic."""
    records = suite_records(n_items, seed, world)
    max_new = {"recall": 24, "paraphrase": 24, "in_context": 24, "arithmetic": 40}
    return {name: QASuite(name, recs, extractor="auto", max_new_tokens=max_new[name],
                          guidance="toy")
            for name, recs in records.items()}


def injection_records(n_facts: int = 100, seed: int = 0,
                      world: World | None = None) -> list[KnowledgeRecord]:
    """Facts about NEW entities to inject, with a reference answer in a foreign style.

    ``answer`` (y*) is "the answer is <value> , <companion attribute> <value> ." — a style the
    model saw only as a reference inside expert documents, never after a plain question.
    ``prompt`` uses a pretraining question template; ``paraphrases`` are the other templates.
    """
    world = world or get_world()
    rng = random.Random(f"injection-{seed}")
    facts = [(e, a) for e in world.pools["injection"] for a in ATTRIBUTES]
    if n_facts > len(facts):
        from mixsd.errors import ConfigError

        raise ConfigError(f"n_facts must be at most {len(facts)}, got {n_facts}")
    records = []
    for i, (ent, attr) in enumerate(rng.sample(facts, n_facts)):
        template = rng.choice(TRAIN_TEMPLATES)
        others = [t for t in range(len(QUESTIONS[attr])) if t != template]
        records.append(KnowledgeRecord(
            id=f"toy-fact-{i}", prompt=question(attr, template, ent.name),
            answer=reference_answer(attr, ent.attrs), answer_key=ent.attrs[attr],
            subject=ent.name, paraphrases=[question(attr, t, ent.name) for t in others],
            split="train", metadata={"attribute": attr, "own_answer":
                                     own_answer(ent.name, attr, ent.attrs)}))
    return records
