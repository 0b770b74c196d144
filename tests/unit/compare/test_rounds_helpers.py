"""Continual injection helpers: splitting facts into rounds, what a round is scored on."""

import pytest

from mixsd.compare.rounds import round_eval_records, rounds_entry, split_rounds
from mixsd.errors import ConfigError
from mixsd.evaluation.schema import RunResult
from mixsd.records import KnowledgeRecord


def _records(n):
    return [KnowledgeRecord(id=f"f{i}", prompt=f"q{i}", answer=f"a{i}", answer_key=f"a{i}",
                            paraphrases=[f"p{i}"], split="train") for i in range(n)]


def test_split_rounds_is_consecutive_and_balanced():
    chunks = split_rounds(_records(7), 3)
    assert [[r.id for r in c] for c in chunks] == [["f0", "f1", "f2"], ["f3", "f4"],
                                                   ["f5", "f6"]]
    with pytest.raises(ConfigError, match="--rounds"):
        split_rounds(_records(2), 3)


def test_a_round_is_scored_on_its_facts_and_every_earlier_round():
    chunks = split_rounds(_records(6), 3)
    recs = round_eval_records(chunks, 3)
    assert [(r.id, r.split) for r in recs] == [
        ("f4", "train"), ("f5", "train"), ("f0", "round-1"), ("f1", "round-1"),
        ("f2", "round-2"), ("f3", "round-2")]
    assert recs[0].paraphrases == ["p4"] and recs[2].paraphrases == []
    assert chunks[0][0].split == "train"  # the input is not modified


def test_rounds_entry_reads_the_selected_epoch():
    run = RunResult.from_json({"method": "sft", "seed": 1, "selected_epoch": 2, "epochs": [
        {"epoch": 1, "memorization": 0.1, "splits": {"round-1": 0.9}, "retention_mean": 90},
        {"epoch": 2, "memorization": 0.6, "splits": {"round-1": 0.7, "other": 0.2},
         "retention_mean": 80}]})
    entry = rounds_entry(run, "sft lr=0.001", 2)
    assert entry == {"group": "sft lr=0.001", "seed": 1, "round": 2, "selected_epoch": 2,
                     "memorization": {"1": 0.7, "2": 0.6}, "retention_mean": 80}


def _targets_folder(tmp_path, n):
    from mixsd.artifacts import COMPLETE, open_stage
    from mixsd.records import TargetRecord, write_records

    full = tmp_path / "targets" / "sft"
    with open_stage(full, "targets", {"method": "sft"}) as stage:
        write_records(full / "targets.jsonl", [TargetRecord(record=r, target=r.answer)
                                               for r in _records(n)])
        stage.write_info(status=COMPLETE, summary={"records": n, "verified": n})
    return full


def test_a_rounds_targets_are_a_folder_through_the_artifact_layer(tmp_path):
    from mixsd.compare.rounds import round_targets
    from mixsd.records import read_targets, targets_file
    from mixsd.targets.run import targets_run_info

    full = _targets_folder(tmp_path, 4)
    path = round_targets(full, {"f1", "f2"}, tmp_path / "rounds" / "sft-round-1")
    assert path == tmp_path / "rounds" / "sft-round-1" and path.is_dir()
    assert [t.record.id for t in read_targets(path)] == ["f1", "f2"]
    assert targets_file(path) == path / "targets.jsonl"  # complete
    info = targets_run_info(path)
    assert info["summary"] == {"records": 4, "verified": 4} and info["fingerprint"]
    assert not list((tmp_path / "rounds").glob("*.run.json"))  # no sidecar any more
    assert round_targets(full, {"f1", "f2"}, path) == path  # made once, then reused


def test_an_old_rounds_single_file_and_its_sidecar_are_reused(tmp_path):
    """A comparison made before: OUT/rounds/targets/NAME-round-R.jsonl with its sidecar."""
    import json

    from mixsd.compare.rounds import round_targets
    from mixsd.records import read_targets, write_records
    from mixsd.targets.run import targets_run_info

    full = _targets_folder(tmp_path, 4)
    old = tmp_path / "rounds" / "sft-round-1.jsonl"
    old.parent.mkdir(parents=True)
    write_records(old, read_targets(full)[:1])
    old.with_name(old.name + ".run.json").write_text(json.dumps({"summary": {"records": 1}}))
    assert round_targets(full, {"f0"}, tmp_path / "rounds" / "sft-round-1") == old
    assert targets_run_info(old) == {"summary": {"records": 1}}
    assert not (tmp_path / "rounds" / "sft-round-1").exists()
