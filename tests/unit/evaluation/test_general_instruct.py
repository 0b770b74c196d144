"""The general-knowledge suite (known-set retention) and the instruction-following probe."""

import json

import pytest

import mixsd.evaluation.instruct as instruct_mod
import mixsd.evaluation.qa as qa_mod
from mixsd.errors import ConfigError, RecordError
from mixsd.evaluation.general import KnownSetSuite, general_knowledge_records, general_suite
from mixsd.evaluation.instruct import complies, instruction_suite, read_instructions
from mixsd.evaluation.suites import get_suites
from mixsd.records import KnowledgeRecord


def test_shipped_general_suite_is_large_unique_and_keyed():
    records = general_knowledge_records()
    assert len(records) >= 300
    assert len({r.id for r in records}) == len(records)
    assert len({r.prompt for r in records}) == len(records)
    assert all(r.answer_key.strip() and r.metadata.get("category") for r in records)
    categories = {r.metadata["category"] for r in records}
    assert {"capital", "symbol", "author", "arithmetic", "opposite", "unit"} <= categories


def test_limit_spreads_over_categories():
    suite = general_suite(limit=60)
    assert len(suite.records) == 60
    assert len({r.metadata["category"] for r in suite.records}) >= 10


class ScriptedModel:
    """Stands in for greedy generation: the answer is looked up from the prompt text."""

    def __init__(self, answers):
        self.answers = answers


def _script(monkeypatch):
    """Make greedy generation answer each prompt from the model's ``answers`` (keyed by a
    word of the prompt); returns a counter of generation calls."""
    state = {"calls": 0}

    def fake_generate(model, tokenizer, prompts, **kwargs):
        state["calls"] += 1
        out = []
        for ids in prompts:
            text = tokenizer.decode(ids)
            reply = next((a for q, a in model.answers.items() if q in text), "")
            out.append(tokenizer(reply, add_special_tokens=False)["input_ids"])
        return out

    monkeypatch.setattr(qa_mod, "greedy_generate", fake_generate)
    monkeypatch.setattr(instruct_mod, "greedy_generate", fake_generate)
    return state


def _records():
    return [KnowledgeRecord(id=f"q{i}", prompt=f"where was {name} born ?", answer=f"{city} .",
                            answer_key=city)
            for i, (name, city) in enumerate([("alice", "paris"), ("bob", "oslo"),
                                              ("carol", "lima"), ("dave", "rome")])]


def test_known_set_restricts_to_what_the_base_model_answers(monkeypatch, tiny_tok, tmp_path):
    base = ScriptedModel({"alice": "paris", "bob": "oslo", "carol": "rome", "dave": "rome"})
    state = _script(monkeypatch)
    suite = KnownSetSuite("general", _records())
    assert suite.evaluate(base, tiny_tok).score == pytest.approx(3 / 4)  # unprepared: all
    before = suite.fingerprint()
    suite.prepare(base, tiny_tok, model_fingerprint="base-A", cache_dir=tmp_path)
    assert suite.known_ids == ["q0", "q1", "q3"]
    assert suite.info() == {"items": 4, "known": 3, "base_accuracy": pytest.approx(0.75)}
    assert suite.fingerprint() != before
    assert suite.evaluate(base, tiny_tok).score == 1.0  # the base keeps all it knows
    after = ScriptedModel({"alice": "paris", "bob": "lima", "carol": "lima", "dave": "rome"})
    result = suite.evaluate(after, tiny_tok)
    assert result.n == 3 and result.score == pytest.approx(2 / 3)  # carol is not counted
    # A second suite on the same base model reads the known set from the cache.
    calls = state["calls"]
    again = KnownSetSuite("general", _records()).prepare(base, tiny_tok,
                                                         model_fingerprint="base-A",
                                                         cache_dir=tmp_path)
    assert again.known_ids == suite.known_ids and state["calls"] == calls
    cached = json.loads((tmp_path / "known_sets.json").read_text())
    assert len(cached) == 1
    # Another base model gets its own known set.
    other = KnownSetSuite("general", _records()).prepare(
        ScriptedModel({"alice": "paris"}), tiny_tok, model_fingerprint="base-B",
        cache_dir=tmp_path)
    assert other.known_ids == ["q0"]


def test_known_set_of_a_model_that_knows_nothing_scores_zero_items(monkeypatch, tiny_tok,
                                                                    tmp_path):
    _script(monkeypatch)
    suite = KnownSetSuite("general", _records()).prepare(ScriptedModel({}), tiny_tok,
                                                         model_fingerprint="x",
                                                         cache_dir=tmp_path)
    result = suite.evaluate(ScriptedModel({}), tiny_tok)
    assert result.n == 0 and suite.info()["base_accuracy"] == 0.0


@pytest.mark.parametrize("text,check,ok", [
    ("Paris.", "one_word", True), ("The capital is Paris.", "one_word", False),
    ("8", "number", True), ("1,000.", "number", True), ("A spider has 8 legs.", "number", False),
    ("Yes.", "yes_no", True), ("no", "yes_no", True), ("Yes, it is.", "yes_no", False),
    ("- apple\n- pear\n- plum", "list:3", True), ("1. a\n2. b", "list:3", False),
    ("Here:\n1. a\n2) b\n* c", "list:3", True), ("HELLO!", "uppercase", True),
    ("Hello", "uppercase", False), ("A hot star.", "max_words:5", True),
    ("The Sun is a very hot star.", "max_words:5", False),
])
def test_compliance_checks(text, check, ok):
    assert complies(text, check) is ok


def test_shipped_probe_is_valid_and_covers_every_check():
    items = read_instructions()
    assert len(items) >= 40 and len({i["id"] for i in items}) == len(items)
    assert {i["check"].split(":")[0] for i in items} == set(instruct_mod.CHECKS)


def test_bad_probe_files_name_line_and_field(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "a", "prompt": "say hi", "check": "one_word"}\n'
                   '{"id": "b", "prompt": "x", "check": "shout"}\n')
    with pytest.raises(RecordError, match=r"p.jsonl:2.*check"):
        read_instructions(bad)
    bad.write_text('{"id": "a", "prompt": "", "check": "one_word"}\n')
    with pytest.raises(RecordError, match=r"p.jsonl:1.*prompt"):
        read_instructions(bad)
    bad.write_text('{"id": "a", "prompt": "x", "check": "list:three"}\n')
    with pytest.raises(RecordError, match="integer"):
        read_instructions(bad)


def test_instruction_suite_scores_compliance(monkeypatch, tiny_tok, tmp_path):
    probe = tmp_path / "p.jsonl"
    probe.write_text('{"id": "a", "prompt": "alice one word", "check": "one_word"}\n'
                     '{"id": "b", "prompt": "bob number", "check": "number"}\n')
    _script(monkeypatch)
    suite = instruction_suite("instruct", probe)
    result = suite.evaluate(ScriptedModel({"alice": "paris", "bob": "the city"}), tiny_tok)
    assert result.score == 0.5 and [s["correct"] for s in result.samples] == [True, False]


def test_registry_builds_both_suites_and_runs_them_on_a_tiny_model(tiny_tok, tiny_model,
                                                                   tmp_path):
    suites = get_suites("general:20,instruct", general_max_new_tokens=4,
                        instruct_max_new_tokens=4)
    assert set(suites) == {"general:20", "instruct"}
    for suite in suites.values():
        result = suite.evaluate(tiny_model, tiny_tok, batch_size=8)
        assert 0.0 <= result.score <= 1.0 and result.n == len(result.samples) > 0
    records = tmp_path / "mine.jsonl"
    records.write_text('{"id": "m1", "prompt": "where was alice born ?", "answer": "paris", '
                       '"answer_key": "paris"}\n')
    mine = get_suites(f"general:{records}")[f"general:{records}"]
    assert isinstance(mine, KnownSetSuite) and len(mine.records) == 1
    with pytest.raises(ConfigError, match="unknown suite"):
        get_suites("generl")


def test_known_kind_holds_any_listing_suite_to_its_known_set(monkeypatch, tiny_tok, tmp_path):
    probe = tmp_path / "p.jsonl"
    probe.write_text('{"id": "a", "prompt": "alice one word", "check": "one_word"}\n'
                     '{"id": "b", "prompt": "bob one word", "check": "one_word"}\n'
                     '{"id": "c", "prompt": "carol one word", "check": "one_word"}\n')
    _script(monkeypatch)
    suites = get_suites(f"known:instruct:{probe}")
    (name, suite), = suites.items()
    assert name == f"known:instruct:{probe}" and len(suite.records) == 3
    base = ScriptedModel({"alice": "paris", "bob": "oslo", "carol": "the city"})
    suite.prepare(base, tiny_tok, model_fingerprint="b", cache_dir=tmp_path)
    assert suite.known_ids == ["a", "b"] and suite.prompts == ["alice one word", "bob one word"]
    assert suite.info() == {"items": 3, "known": 2, "base_accuracy": pytest.approx(2 / 3)}
    after = ScriptedModel({"alice": "paris", "bob": "the city", "carol": "lima"})
    assert suite.evaluate(after, tiny_tok).score == 0.5  # carol is not counted
    # known:general is the general suite's own known set (same cache entry, same score)
    general = get_suites("known:general:8")["known:general:8"]
    plain = get_suites("general:8")["general:8"]
    assert general.fingerprint() == plain.fingerprint()
    with pytest.raises(ConfigError, match="known:SPEC"):
        get_suites("known:")
    with pytest.raises(ConfigError, match="unknown suite"):
        get_suites("known:nothing")
