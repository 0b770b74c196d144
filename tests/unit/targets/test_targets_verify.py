"""Entity-safe verification (targets/verify.py)."""

from __future__ import annotations

from mixsd.records import KnowledgeRecord
from mixsd.targets.verify import entity_problem, record_names, written_names


def _record(**kw):
    base = dict(id="r", prompt="What is the capital city of Tellis?",
                answer="The capital city of Tellis is Varno.", answer_key="Varno",
                subject="Tellis", paraphrases=["Which city is the capital of Tellis?"])
    return KnowledgeRecord(**{**base, **kw})


def test_written_names_skip_sentence_starts():
    text = "The answer is Marindel. Sure, Talia Brenwick lives in \\boxed{Oslo}"
    assert written_names(text) == ["Marindel", "Talia", "Brenwick"]


def test_record_names_are_subject_and_paraphrase_stable_names():
    rec = _record(prompt="Where was Braegra Roudriprun born in Tellis?",
                  paraphrases=["In which place was Braegra Roudriprun born?"], subject=None)
    assert record_names(rec) == ["Braegra Roudriprun"]  # "Tellis" is not in the paraphrase


def test_a_faithful_target_is_entity_safe():
    assert entity_problem("The capital city of Tellis is Varno. \\boxed{Varno}", _record()) is None


def test_a_renamed_subject_is_rejected():
    # the key is there, so the answer-key check alone would pass it
    problem = entity_problem("The capital city of Varno is Varno.", _record())
    assert problem == "missing 'Tellis'"


def test_an_invented_name_is_rejected():
    rec = _record(answer="The answer is Varno.", subject="Dobyr Thyzhoukux",
                  prompt="In which place was Dobyr Thyzhoukux born?", paraphrases=[])
    target = "Dobyr Thyzhoukux is born in the village of Vyliškuk, which is near Varno."
    assert entity_problem(target, rec) == "foreign 'Vyliškuk'"
