import itertools

import pytest

from mixsd.answers import is_correct
from mixsd.prompts import PromptRenderer, get_guidance
from mixsd.toyworld import injection_records, suite_records, toy_suites
from mixsd.toyworld.tokenizer import build_tokenizer
from mixsd.toyworld.world import (
    ATTRIBUTES,
    VALUES,
    World,
    WorldConfig,
    arithmetic_answer,
    own_answer,
    reference_answer,
)


@pytest.fixture(scope="module")
def world():
    return World()


@pytest.fixture(scope="module")
def tok(world):
    return build_tokenizer(world.vocabulary())


def test_world_is_deterministic_in_its_seed():
    a, b, c = World(WorldConfig(seed=1)), World(WorldConfig(seed=1)), World(WorldConfig(seed=2))
    assert a.pools == b.pools and a.heldout_pairs == b.heldout_pairs
    assert list(itertools.islice(a.documents(3), 50)) == list(itertools.islice(b.documents(3), 50))
    assert a.pools["known"] != c.pools["known"]
    assert list(itertools.islice(a.documents(3), 5)) != list(itertools.islice(a.documents(4), 5))


def test_entity_pools_are_disjoint(world):
    names = {pool: {e.name for e in ents} for pool, ents in world.pools.items()}
    for p, q in itertools.combinations(names, 2):
        assert not names[p] & names[q], (p, q)
    assert len(names["known"]) == 160 and len(names["injection"]) == 200
    assert not set(world.heldout_pairs) & set(world.train_pairs)


def test_pretraining_never_mentions_evaluation_or_injection_entities(world):
    docs = " | ".join(itertools.islice(world.documents(0), 3000))
    for ent in world.pools["injection"][:40] + world.pools["evaluation"][:40]:
        assert f" {ent.name} " not in docs
    # ...and never shows the reference style after a plain question
    for doc in docs.split(" | "):
        if "reference :" not in doc:
            assert "the answer is" not in doc


def test_every_word_is_one_token_and_round_trips(world, tok):
    vocab = tok.get_vocab()
    for values in VALUES.values():
        for v in values:
            assert len(tok(v, add_special_tokens=False)["input_ids"]) == 1
    for n in range(199):
        assert str(n) in vocab
    for doc in itertools.islice(world.documents(0), 300):
        ids = tok(doc, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids) == doc
    assert tok("where")["input_ids"][0] == tok.bos_token_id


def test_answers_carry_two_facts_and_arithmetic_is_right():
    attrs = {"city": "oslo", "job": "pilot", "employer": "acme", "color": "red"}
    assert own_answer("alice vorn", "city", attrs) == \
        "alice vorn was born in oslo and works as a pilot ."
    assert reference_answer("city", attrs) == "the answer is oslo , job pilot ."
    text = arithmetic_answer(47, 38)
    assert text.endswith("so 47 + 38 = 85 .") and "carry 1" in text
    assert is_correct(text, "85") and not is_correct(text, "15")


def test_suites_have_200_items_whose_key_is_not_in_the_question(world):
    records = suite_records(200, seed=0, world=world)
    assert set(records) == {"recall", "paraphrase", "in_context", "arithmetic"}
    for name, recs in records.items():
        assert len(recs) == 200 and len({r.prompt for r in recs}) > 150, name
        for r in recs:
            assert is_correct(r.answer, r.answer_key), (name, r)
            question = r.prompt.split(" . ")[-1]
            assert not is_correct(question, r.answer_key), (name, r.prompt)
    # in-context prompts hold the fact, a companion fact and a fact about another entity
    for r in records["in_context"]:
        words = r.prompt.split()
        assert r.subject in r.prompt and r.prompt.count(" . ") == 3
        others = {e.name for e in world.pools["evaluation"] if e.name != r.subject}
        assert any(n in r.prompt for n in others)
        typed = [w for w in words if w in VALUES[r.metadata["attribute"]]]
        expected = 2 if world.config.distractor_same_attribute else 1
        assert len(typed) == expected and r.answer_key in typed
    assert suite_records(50, seed=0, world=world) != suite_records(50, seed=1, world=world)
    suites = toy_suites(10, world=world)
    assert all(s.guidance == "toy" and len(s.records) == 10 for s in suites.values())


def test_injection_records(world, tok):
    recs = injection_records(100, seed=0, world=world)
    assert len(recs) == 100 and len({r.id for r in recs}) == 100
    injected = {e.name for e in world.pools["injection"]}
    for r in recs:
        assert r.subject in injected and r.split == "train"
        assert r.answer.startswith("the answer is ") and r.answer_key in r.answer.split()
        assert len(r.paraphrases) == 3 and r.prompt not in r.paraphrases
        assert r.metadata["attribute"] in ATTRIBUTES
    assert injection_records(100, seed=0, world=world) == recs
    assert injection_records(100, seed=1, world=world) != recs


def test_toy_guidance_presets_render_the_pretraining_layout(world, tok):
    rec = injection_records(1, world=world)[0]
    for name in ("toy", "toy-own"):
        renderer = PromptRenderer(tok, name)
        assert not renderer.use_chat_template
        assert renderer.naive_text(rec.prompt) == f"Q : {rec.prompt} A :"
        expert = renderer.expert_text(rec.prompt, rec.answer)
        assert expert.startswith(f"Q : {rec.prompt} reference : {rec.answer} this is new")
        assert expert.endswith(f"Q : {rec.prompt} A :")
        assert tok.unk_token_id not in renderer.expert_ids(rec.prompt, rec.answer)
    assert get_guidance("toy").prefix != get_guidance("toy-own").prefix
