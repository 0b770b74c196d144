"""Killed after k records and re-run == uninterrupted; config changes are refused."""

from __future__ import annotations

import json

import pytest

from mixsd.errors import MixsdError
from mixsd.records import KnowledgeRecord, read_targets, write_records
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
    whole = tmp_path / "whole.jsonl"
    summary = run_targets(TargetsConfig(**CFG), data, whole, model=model, tokenizer=tok)
    assert summary["records"] == 9 and summary["resumed_records"] == 0
    assert summary["verified"] + summary["unverified"] == 9

    out = tmp_path / "resumed.jsonl"
    _interrupt_after(monkeypatch, 4)
    with pytest.raises(KeyboardInterrupt):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    monkeypatch.undo()
    partial = tmp_path / "resumed.jsonl.partial"
    assert not out.exists() and len(partial.read_text().splitlines()) == 4
    with partial.open("a") as fh:  # a line cut in the middle by the kill
        fh.write('{"id": "r4", "prompt": "when was')
    # a different batch size is not a different config
    summary = run_targets(
        TargetsConfig(**{**CFG, "batch_size": 2}), data, out, model=model, tokenizer=tok
    )
    assert summary["resumed_records"] == 4 and summary["records"] == 9
    assert out.read_bytes() == whole.read_bytes()
    assert not partial.exists()
    assert json.loads((tmp_path / "resumed.jsonl.run.json").read_text())["summary"]["records"] == 9
    assert (tmp_path / "resumed.jsonl.config.yaml").exists()
    assert [t.record.id for t in read_targets(out)] == [f"r{i}" for i in range(9)]


def test_resume_with_other_config_is_refused_and_overwrite_restarts(
    tiny, data, tmp_path, monkeypatch
):
    model, tok = tiny
    out = tmp_path / "t.jsonl"
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        run_targets(TargetsConfig(**CFG), data, out, model=model, tokenizer=tok)
    monkeypatch.undo()
    other = TargetsConfig(**{**CFG, "mix_lambda": 0.9})
    with pytest.raises(MixsdError, match="different config"):
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
