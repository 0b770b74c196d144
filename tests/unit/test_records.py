import json

import pytest

from mixsd.errors import RecordError
from mixsd.records import KnowledgeRecord, TargetRecord, read_records, read_targets, write_records

OURS = {"id": "r1", "prompt": "Where was Alice born?", "answer": "The answer is Oslo.",
        "answer_key": "Oslo"}


def test_reads_our_format_and_round_trips(write_jsonl, tmp_path):
    rec = {**OURS, "paraphrases": ["Alice's birthplace?"], "split": "train", "subject": "Alice",
           "metadata": {"relation": "born_in"}}
    recs = read_records(write_jsonl([rec]))
    assert recs == [KnowledgeRecord(**rec)]
    out = write_records(tmp_path / "out.jsonl", recs)
    assert read_records(out) == recs


def test_reads_chat_format_of_the_paper_authors(write_jsonl):
    chat = {"messages": [{"role": "user", "content": "Q?"},
                         {"role": "assistant", "content": "The answer is 7.\n\n\\boxed{7}"}],
            "clear_answer": 7}
    (rec,) = read_records(write_jsonl([chat], "facts.jsonl"))
    assert (rec.prompt, rec.answer, rec.answer_key) == ("Q?", "The answer is 7.\n\n\\boxed{7}", "7")
    assert rec.id == "facts-1"


def test_reads_trl_prompt_completion_with_boxed_key(write_jsonl):
    row = {"prompt": [{"role": "user", "content": "2+2?"}],
           "completion": [{"role": "assistant", "content": "so \\boxed{4}"}]}
    (rec,) = read_records(write_jsonl([row]))
    assert (rec.prompt, rec.answer, rec.answer_key) == ("2+2?", "so \\boxed{4}", "4")


def test_reads_a_json_array(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([OURS, {**OURS, "id": "r2"}]))
    assert [r.id for r in read_records(path)] == ["r1", "r2"]


def test_unknown_keys_are_kept_in_metadata(write_jsonl):
    (rec,) = read_records(write_jsonl([{**OURS, "source": "wiki"}]))
    assert rec.metadata == {"source": "wiki"}


@pytest.mark.parametrize("rows, line, field", [
    ([OURS, "{not json"], 2, None),
    ([OURS, {k: v for k, v in OURS.items() if k != "answer_key"} | {"id": "x"}], 2, "answer_key"),
    ([{**OURS, "prompt": 3}], 1, "prompt"),
    ([{**OURS, "prompt": "  "}], 1, "prompt"),
    ([OURS, OURS], 2, "id"),
    ([{**OURS, "paraphrases": "one"}], 1, "paraphrases"),
    ([{"messages": [{"role": "user", "content": "q"}], "clear_answer": "a"}], 1, "messages"),
    ([OURS, "42"], 2, None),
])
def test_bad_input_names_file_line_and_field(write_jsonl, rows, line, field):
    path = write_jsonl(rows)
    with pytest.raises(RecordError) as err:
        read_records(path)
    assert err.value.line == line and err.value.field == field
    assert f"{path}:{line}" in str(err.value)
    if field:
        assert f"field '{field}'" in str(err.value)


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(json.dumps(OURS).encode() + b"\n" + b'{"id": "\xff"}\n')
    with pytest.raises(RecordError, match="bad.jsonl:2.*UTF-8"):
        read_records(path)


def test_empty_and_missing_files_are_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n \n")
    with pytest.raises(RecordError, match="empty"):
        read_records(empty)
    with pytest.raises(RecordError, match="not found"):
        read_records(tmp_path / "nope.jsonl")


def test_blank_lines_are_skipped_but_line_numbers_kept(write_jsonl):
    path = write_jsonl([OURS, "", {**OURS, "id": "r2", "answer_key": 5}])
    assert [r.answer_key for r in read_records(path)] == ["Oslo", "5"]
    path = write_jsonl([OURS, "", {**OURS, "id": 2.5}])
    with pytest.raises(RecordError, match=":3"):
        read_records(path)


def test_targets_round_trip(tmp_path):
    rec = KnowledgeRecord("a", "q", "y", "k")
    tr = TargetRecord(rec, "target text", {"verified": False, "lambda": 0.3})
    path = write_records(tmp_path / "t.jsonl", [tr])
    (back,) = read_targets(path)
    assert back == tr and not back.verified
    assert read_records(path)[0] == rec  # a targets file is also a records file


def test_targets_need_a_target_field(write_jsonl):
    with pytest.raises(RecordError, match="field 'target'"):
        read_targets(write_jsonl([OURS]))


def test_json_array_of_non_objects_names_the_record(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("[1, 2]")
    with pytest.raises(RecordError, match="record 1: a record must be a JSON object"):
        read_records(path)


def test_one_reader_skips_a_byte_order_mark_and_names_lines(tmp_path):
    from mixsd.records import read_json_objects

    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(OURS).encode() + b"\n\n[1]\n")
    assert [(obj, ctx["line"]) for obj, ctx in read_json_objects(path)] == [(OURS, 1), ([1], 3)]
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(OURS).encode() + b"\n")
    assert read_records(path)[0].id == "r1"
    array = tmp_path / "a.json"
    array.write_bytes(b"\xef\xbb\xbf" + json.dumps([OURS, OURS]).encode())
    assert [ctx["path"] for _, ctx in read_json_objects(array)] == [f"{array} record 1",
                                                                    f"{array} record 2"]


def test_one_reader_empty_files_only_when_allowed(tmp_path):
    from mixsd.records import read_json_objects

    empty = tmp_path / "e.jsonl"
    empty.write_text("\n")
    assert list(read_json_objects(empty, allow_empty=True)) == []
    with pytest.raises(RecordError, match="e.jsonl.*empty"):
        list(read_json_objects(empty))
