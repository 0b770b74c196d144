"""KGFact: world sizes, novel entities, split construction and disjointness, determinism."""

from __future__ import annotations

import re

import pytest

from mixsd.answers import extract_boxed, is_correct
from mixsd.corpora import KGFactConfig, generate_corpus
from mixsd.corpora.kgfact import generate_world
from mixsd.corpora.kgworld import DOMAINS, RELATIONS, TRAIN_TEMPLATES
from mixsd.errors import ConfigError


@pytest.fixture(scope="module")
def small():
    return generate_corpus("kgfact", KGFactConfig(seed=0))


def test_sizes_follow_size_presets_and_overrides():
    for config, shape in ((KGFactConfig(), (5, 10)), (KGFactConfig(size="large"), (7, 25)),
                          (KGFactConfig(size="large", domains=8, entities=3), (8, 3))):
        world = generate_world(config)
        assert len(world.entities) == shape[0]
        assert {len(v) for v in world.entities.values()} == {shape[1]}
    assert list(generate_world(KGFactConfig(domains=8, entities=2)).entities) == list(DOMAINS)
    assert {"person", "location", "organization", "event", "profession", "product",
            "media_work", "digital_tool"} <= set(DOMAINS)


def test_every_domain_has_relations_and_facts_are_typed():
    world = generate_world(KGFactConfig(domains=8, entities=4))
    subjects = {f.subject.domain for f in world.facts}
    assert subjects == set(DOMAINS)
    for fact in world.facts:
        assert fact.subject.domain == fact.relation.subject_domain
        assert fact.object.domain == fact.relation.object_domain
        assert fact.subject != fact.object
    assert all(len(r.questions) >= 3 and len(r.questions) > TRAIN_TEMPLATES for r in RELATIONS)
    # one object per (subject, relation): every question has exactly one answer
    keys = [(f.subject.name, f.relation.name) for f in world.facts]
    assert len(keys) == len(set(keys))


def test_entity_names_are_unique_composed_pseudo_words():
    world = generate_world(KGFactConfig(size="large", domains=8))
    names = [e.name for ents in world.entities.values() for e in ents]
    assert len(names) == len({n.lower() for n in names}) == 8 * 25
    common = {"the", "and", "city", "john", "london", "apple", "google", "river"}
    for name in names:
        assert re.fullmatch(r"[A-Za-z ]+", name)
        assert not ({w.lower() for w in name.split()} & common - {"the"})


def test_train_answers_in_authors_style(small):
    for rec in small["train"]:
        assert rec.answer == f"The answer is {rec.answer_key}.\n\n\\boxed{{{rec.answer_key}}}"
        assert extract_boxed(rec.answer) == rec.answer_key
        assert is_correct(rec.answer, rec.answer_key)
        assert rec.split == "train" and rec.subject
        assert {"relation", "domain", "hop_path", "fact_index"} <= set(rec.metadata)
        assert rec.paraphrases and rec.prompt not in rec.paraphrases


def test_recall_is_a_subset_of_train_questions(small):
    train = {r.prompt: r.answer_key for r in small["train"]}
    assert 0 < len(small["recall"]) < len(small["train"])
    for rec in small["recall"]:
        assert train[rec.prompt] == rec.answer_key


def test_no_train_question_in_any_heldout_split(small):
    train_questions = [r.prompt for r in small["train"]]
    for split in ("paraphrase", "retrieval", "two_hop", "two_hop_context"):
        assert small[split], split
        for rec in small[split]:
            assert not any(q in rec.prompt for q in train_questions), (split, rec.prompt)


def test_paraphrase_asks_the_same_fact_differently(small):
    train = {r.metadata["fact_index"]: r for r in small["train"]}
    for rec in small["paraphrase"]:
        twin = train[rec.metadata["fact_index"]]
        assert rec.answer_key == twin.answer_key and rec.subject == twin.subject
        assert rec.metadata["template"] >= TRAIN_TEMPLATES > twin.metadata["template"]


def test_retrieval_shows_the_fact_among_distractors():
    config = KGFactConfig(seed=1, distractors=50)
    world = generate_world(config)
    splits = generate_corpus("kgfact", config)
    for rec in splits["retrieval"]:
        fact = world.facts[rec.metadata["fact_index"]]
        listed = re.findall(r"^\d+\. (.*)$", rec.prompt, flags=re.MULTILINE)
        assert len(listed) == 51 == rec.metadata["distractors"] + 1
        assert listed[rec.metadata["fact_position"] - 1] == fact.statement()
        assert listed.count(fact.statement()) == 1
    few = generate_corpus("kgfact", KGFactConfig(distractors=3))["retrieval"][0]
    assert len(re.findall(r"^\d+\. ", few.prompt, flags=re.MULTILINE)) == 4


def test_two_hop_answers_follow_the_graph(small):
    world = generate_world(KGFactConfig(seed=0))
    objects = {(f.subject.name, f.relation.name): f.object.name for f in world.facts}
    assert len(small["two_hop"]) == len(small["two_hop_context"]) > 0
    for closed, ctx in zip(small["two_hop"], small["two_hop_context"]):
        first, second = closed.metadata["hop_path"]
        bridge = objects[(closed.subject, first)]
        assert bridge == closed.metadata["bridge"]
        assert objects[(bridge, second)] == closed.answer_key == ctx.answer_key
        assert closed.subject in closed.prompt and bridge not in closed.prompt
        assert closed.prompt in ctx.prompt and bridge in ctx.prompt
        assert extract_boxed(closed.answer) == closed.answer_key


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = generate_corpus("kgfact", KGFactConfig(seed=5))
    b = generate_corpus("kgfact", KGFactConfig(seed=5))
    c = generate_corpus("kgfact", KGFactConfig(seed=6))
    assert {k: [r.to_dict() for r in v] for k, v in a.items()} == \
        {k: [r.to_dict() for r in v] for k, v in b.items()}
    assert [r.prompt for r in a["train"]] != [r.prompt for r in c["train"]]


def test_ids_are_unique_per_split(small):
    for split, records in small.items():
        assert len({r.id for r in records}) == len(records)
        assert all(r.split == split for r in records)


@pytest.mark.parametrize("kwargs, words", [
    ({"size": "huge"}, "size must be one of"),
    ({"domains": 1}, "domains must be in"),
    ({"entities": 1}, "entities must be in"),
    ({"recall_fraction": 1.5}, "recall_fraction"),
])
def test_bad_options_are_config_errors(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        KGFactConfig(**kwargs)
