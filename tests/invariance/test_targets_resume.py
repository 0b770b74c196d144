"""Killed after k records and re-run == uninterrupted; config changes are refused."""

from __future__ import annotations

import json

import pytest

from mixsd.errors import MixsdError
from mixsd.records import TARGETS_FILE, KnowledgeRecord, read_targets, write_records
from mixsd.targets import TargetsConfig, run_targets
from mixsd.targets.build import TargetBuilder
from mixsd.testing import tiny_llama, tiny_tokenizer

QS = [
    "where was alice born ?",
    "what is 2 + 3 ?",
    "who works in oslo ?",
    "which city ?",
    "when was bob born in rome ?",
]


@pytest.fixture(scope="module")
def tiny():
    tok = tiny_tokenizer()
    return tiny_llama(tok), tok


@pytest.fixture
def data(tmp_path):
    recs = [
        KnowledgeRecord(f"r{i}", QS[i % 5], "alice was born in paris", "paris") for i in range(9)
    ]
    return write_records(tmp_path / "records.jsonl", recs)


CFG = dict(
    mix_lambda=0.4, temperature=1.0, max_new_tokens=8, max_retries=2, batch_size=3, progress=False
)


def _interrupt_after(monkeypatch, k):
    original = TargetBuilder.iter_targets

    def dying(self, records, **kw):
        for i, target in enumerate(original(self, records, **kw)):
            if i == k:
                raise KeyboardInterrupt
            yield target

    monkeypatch.setattr(TargetBuilder, "iter_targets", dying)


def test_interrupted_and_resumed_equals_uninterrupted(tiny, data, tmp_path, monkeypatch):
    model, tok = tiny
    whole = tmp_path / "whole"
    summary = run_targets(TargetsConfig(**CFG), data, whole, model=model, tokenizer=tok)
    assert summary["records"] == 9 and summary["resumed_records"] == 0
    assert summary["verified"] + summary["unverified"] == 9

    out = tmp_path / "resumed"
    _interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    monkeypatch.undo()
    partial = out / "targets.jsonl.partial"
    assert not (out / TARGETS_FILE).exists() and len(partial.read_text().splitlines()) == 4
    assert json.loads((out / "run.json").read_text())["status"] == "running"
    with partial.open("a") as fh:  # a line cut in the middle by the kill
        fh.write('{"id": "r4", "prompt": "when was')
    # a different batch size is not a different config
    summary = run_targets(
        TargetsConfig(**{**CFG, "batch_size": 2}), data, out, model=model, tokenizer=tok
    )
    assert summary["resumed_records"] == 4 and summary["records"] == 9
    assert (out / TARGETS_FILE).read_bytes() == (whole / TARGETS_FILE).read_bytes()
    assert not partial.exists()
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["records"] == 9 and run["status"] == "complete"
    assert (out / "config.yaml").exists()
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "run.json", TARGETS_FILE]
    assert [t.record.id for t in read_targets(out)] == [f"r{i}" for i in range(9)]


def test_resume_with_other_config_is_refused_and_overwrite_restarts(
    tiny, data, tmp_path, monkeypatch
):
    model, tok = tiny
    out = tmp_path / "t"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    monkeypatch.undo()
    other = TargetsConfig(**{**CFG, "mix_lambda": 0.9})
    with pytest.raises(MixsdError, match="other values of mix_lambda; .*--overwrite"):
        run_targets(other, data, out, model=model, tokenizer=tok)
    summary = run_targets(
        TargetsConfig(**{**CFG, "mix_lambda": 0.9, "overwrite": True}),
        data,
        out,
        model=model,
        tokenizer=tok,
    )
    assert summary["resumed_records"] == 0
    assert {t.meta["lambda"] for t in read_targets(out)} == {0.9}
    # complete output: the same command reports it, another config refuses to clobber it
    again = run_targets(other, data, out, model=model, tokenizer=tok)
    assert again["already_complete"] and again["records"] == 9
    with pytest.raises(MixsdError, match="overwrite"):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    # other records are another run too
    fewer = write_records(tmp_path / "fewer.jsonl", read_targets(out)[:3])
    with pytest.raises(MixsdError, match="other values of records;"):
        run_targets(other, fewer, out, model=model, tokenizer=tok)


def test_an_old_single_targets_file_is_still_read(tiny, data, tmp_path):
    """The layout before folders: X.jsonl beside X.jsonl.run.json, read by every reader."""
    from mixsd.records import targets_file, targets_name
    from mixsd.targets.run import targets_run_info

    model, tok = tiny
    new = tmp_path / "new"
    run_targets(TargetsConfig(**CFG), data, new, model=model, tokenizer=tok)
    old = tmp_path / "mixsd-0.3-s0.jsonl"
    old.write_bytes((new / TARGETS_FILE).read_bytes())
    (tmp_path / "mixsd-0.3-s0.jsonl.run.json").write_text((new / "run.json").read_text())
    assert read_targets(old) == read_targets(new)
    assert targets_file(old) == old and targets_file(new) == new / TARGETS_FILE
    assert targets_name(old) == "mixsd-0.3-s0" and targets_name(tmp_path / "mixsd-0.3-s0") \
        == "mixsd-0.3-s0"
    assert targets_run_info(old)["summary"] == targets_run_info(new)["summary"]


def test_a_foreign_targets_file_in_the_folder_is_not_clobbered(tiny, data, tmp_path):
    model, tok = tiny
    out = tmp_path / "t"
    out.mkdir()
    (out / TARGETS_FILE).write_text("mine\n")
    with pytest.raises(MixsdError, match="without the run.json.*--overwrite"):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    assert (out / TARGETS_FILE).read_text() == "mine\n"
    summary = run_targets(TargetsConfig(**{**CFG, "overwrite": True}), data, out, model=model,
                          tokenizer=tok)
    assert summary["records"] == 9
