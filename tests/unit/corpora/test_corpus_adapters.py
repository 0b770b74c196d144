"""SimpleQA and MQuAKE adapters on small files in the upstream formats; bad input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd.answers import extract_boxed
from mixsd.corpora import MQuAKEConfig, SimpleQAConfig, generate_corpus
from mixsd.errors import ConfigError, MixsdError, RecordError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "corpora"
SIMPLEQA = FIXTURES / "simple_qa_small.csv"
MQUAKE = FIXTURES / "mquake_cf3k_small.json"


# -- SimpleQA -------------------------------------------------------------------------------
def test_simpleqa_reads_the_upstream_csv():
    splits = generate_corpus("simpleqa", SimpleQAConfig(source=str(SIMPLEQA)))
    train = splits["train"]
    assert len(train) == 5
    first = train[0]
    assert first.prompt == "Who received the fictional Orrin Medal for optics in 2011?"
    assert first.answer_key == "Tamsin Holloway"
    assert first.answer == "The answer is Tamsin Holloway.\n\n\\boxed{Tamsin Holloway}"
    assert first.metadata["topic"] == "Science and technology"
    assert first.metadata["answer_type"] == "Person"
    assert len(first.metadata["urls"]) == 2
    # quoted fields with commas and doubled quotes survive
    assert train[2].prompt == 'In which year was the painting "Grey Harbour, Morning" first exhibited?'
    assert train[2].answer_key == "1898" and extract_boxed(train[2].answer) == "1898"
    assert all(r.split == "train" for r in train)
    prompts = {r.prompt for r in train}
    assert splits["recall"] and all(r.prompt in prompts for r in splits["recall"])


def test_simpleqa_tolerates_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + SIMPLEQA.read_bytes())
    assert len(generate_corpus("simpleqa", SimpleQAConfig(source=str(path)))["train"]) == 5


def test_simpleqa_limit_is_a_seeded_sample():
    a = generate_corpus("simpleqa", SimpleQAConfig(source=str(SIMPLEQA), limit=3, seed=1))
    b = generate_corpus("simpleqa", SimpleQAConfig(source=str(SIMPLEQA), limit=3, seed=1))
    assert [r.id for r in a["train"]] == [r.id for r in b["train"]]
    assert len(a["train"]) == 3


def test_simpleqa_from_a_datasets_id(monkeypatch):
    import datasets

    calls = []

    def fake_load(name, split):
        calls.append((name, split))
        return [{"metadata": "{'topic': 'Art'}", "problem": "Q?", "answer": "A"}]

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    splits = generate_corpus("simpleqa", SimpleQAConfig(source="someone/SimpleQA"))
    assert calls == [("someone/SimpleQA", "test")]
    assert splits["train"][0].answer_key == "A"


def test_simpleqa_unreachable_dataset_id_is_a_clear_error(monkeypatch):
    import datasets

    def offline(name, split):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(MixsdError, match="could not load dataset 'someone/SimpleQA'.*local file"):
        generate_corpus("simpleqa", SimpleQAConfig(source="someone/SimpleQA"))


@pytest.mark.parametrize("content, words", [
    ("question,answer\nQ?,A\n", "missing column.*problem"),
    ("metadata,problem,answer\n{},Q1?,A\n{},Q2?,\n", r":3, field 'answer'.*empty"),
    ("metadata,problem,answer\n\"{'topic': \",Q?,A\n", r":2, field 'metadata'"),
    ("metadata,problem,answer\n", "no questions"),
])
def test_simpleqa_bad_files_name_file_line_and_field(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RecordError, match=words) as info:
        generate_corpus("simpleqa", SimpleQAConfig(source=str(path)))
    assert "bad.csv" in str(info.value)


def test_simpleqa_needs_a_source_and_an_existing_file(tmp_path):
    with pytest.raises(ConfigError, match="--source"):
        SimpleQAConfig()
    with pytest.raises(RecordError, match="file not found"):
        generate_corpus("simpleqa", SimpleQAConfig(source=str(tmp_path / "missing.csv")))


# -- MQuAKE ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mquake():
    return generate_corpus("mquake", MQuAKEConfig(source=str(MQUAKE)))


def test_mquake_edits_answer_with_the_new_object(mquake):
    edits = mquake["edits"]
    # case 2 repeats case 1's edit (deduplicated); case 3 contradicts it (left out)
    assert [e.answer_key for e in edits] == ["Croatia", "Finnish"]
    first = edits[0]
    assert first.prompt == "What is the country of citizenship of Ellie Kemper?"
    assert first.subject == "Ellie Kemper"
    assert first.answer == "The answer is Croatia.\n\n\\boxed{Croatia}"
    assert first.metadata["target_true"] == "United States of America"
    assert first.metadata["cloze"] == "Ellie Kemper is a citizen of"
    assert first.metadata["case_ids"] == [1, 2]


def test_mquake_multihop_questions_become_a_split(mquake):
    multihop = mquake["multihop"]
    assert len(multihop) == 6  # 3 questions each for cases 1 and 2
    assert {r.answer_key for r in multihop} == {"Zoran Milanovic", "Finnish"}
    assert multihop[0].metadata["answer_aliases"] == ["Zoran Milanović"]
    assert not any("Naruhito" == r.answer_key for r in multihop)
    assert [r.answer_key for r in mquake["single_hop"]] == ["Croatia", "Zoran Milanovic"]
    edit_prompts = {r.prompt for r in mquake["edits"]}
    assert not edit_prompts & {r.prompt for r in multihop}


def _case(**overrides):
    case = json.loads(MQUAKE.read_text(encoding="utf-8"))[0]
    case.update(overrides)
    return case


@pytest.mark.parametrize("cases, words", [
    ([_case(), _case(requested_rewrite=[{"prompt": "{} is a citizen of", "subject": "X",
                                          "target_true": {"str": "Y"}}])],
     r"record 2, field 'requested_rewrite\[0\].target_new'"),
    ([_case(requested_rewrite=[{**_case()["requested_rewrite"][0], "prompt": "no slot"}])],
     r"record 1, field 'requested_rewrite\[0\].prompt'"),
    ([_case(requested_rewrite=[])], "field 'requested_rewrite'"),
    ([_case(questions="not a list")], "field 'questions'"),
    ([_case(new_answer="")], "field 'new_answer'.*empty"),
    ([_case(new_single_hops=[{"question": "Q?"}])], r"field 'new_single_hops\[0\].answer'"),
    (["a string"], "record 1.*must be an object"),
    ([], "no cases found"),
])
def test_mquake_bad_cases_name_record_and_field(tmp_path, cases, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(cases), encoding="utf-8")
    with pytest.raises(RecordError, match=words):
        generate_corpus("mquake", MQuAKEConfig(source=str(path)))


def test_mquake_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n {"case_id": 1,\n  oops}\n]', encoding="utf-8")
    with pytest.raises(RecordError, match=r"broken.json:3.*invalid JSON"):
        generate_corpus("mquake", MQuAKEConfig(source=str(path)))
