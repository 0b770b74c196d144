"""The one artifact layer: new / resume / refuse naming the field / overwrite, atomic run.json,
the keyed cache."""

from __future__ import annotations

import errno
import json
import os

import pytest

from mixsd.artifacts import (
    COMPLETE,
    RUNNING,
    KeyedCache,
    changed_fields,
    fingerprint,
    open_stage,
)
from mixsd.errors import ArtifactWriteError, MixsdError

FIELDS = {"lr": 0.001, "epochs": 3, "device": "cpu", "data": "a.jsonl"}


def test_fingerprint_is_canonical_and_decided_by_every_value():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 1.5})
    assert fingerprint({"a": "é"}) == fingerprint({"a": "\u00e9"})
    assert len(fingerprint({})) == 64


def test_new_then_resume_then_complete(tmp_path):
    stage = open_stage(tmp_path / "s", "thing", FIELDS, mutable=("device",))
    assert stage.state == "new" and not stage.resumed and "device" not in stage.fields
    stage.write_info(status=RUNNING, extra=1)
    info = json.loads((tmp_path / "s" / "run.json").read_text())
    assert info["status"] == RUNNING and info["stage"] == "thing" and info["extra"] == 1
    assert info["fingerprint"] == stage.fingerprint and info["fields"]["lr"] == 0.001
    # a mutable field may change: the same run, resumed (not complete yet)
    again = open_stage(tmp_path / "s", "thing", {**FIELDS, "device": "cuda"}, mutable=("device",))
    assert again.resumed and not again.complete
    again.write_info(status=COMPLETE)
    assert open_stage(tmp_path / "s", "thing", FIELDS, mutable=("device",)).complete


def test_another_value_is_refused_in_one_line_naming_the_fields(tmp_path):
    open_stage(tmp_path, "thing", FIELDS).write_info(status=RUNNING)
    with pytest.raises(MixsdError) as err:
        open_stage(tmp_path, "thing", {**FIELDS, "lr": 0.01, "epochs": 4},
                   overwrite_flag="--overwrite")
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message
    assert "other values of epochs, lr;" in message
    assert "re-run the same command to resume it" in message
    assert "--overwrite" in message and "another --out" in message
    # a stage without --overwrite does not offer it
    with pytest.raises(MixsdError) as err:
        open_stage(tmp_path, "thing", {**FIELDS, "data": "b.jsonl"})
    assert "--overwrite" not in str(err.value) and "other values of data;" in str(err.value)
    # a new field is a change too
    with pytest.raises(MixsdError, match="other values of extra;"):
        open_stage(tmp_path, "thing", {**FIELDS, "extra": 1})


def test_overwrite_and_nothing_kept_start_again(tmp_path):
    open_stage(tmp_path, "thing", FIELDS).write_info(status=COMPLETE)
    other = {**FIELDS, "lr": 0.5}
    assert open_stage(tmp_path, "thing", other, overwrite=True).state == "new"
    assert open_stage(tmp_path, "thing", other, has_outputs=False).state == "new"


def test_a_folder_from_before_the_layer_is_compared_by_its_config_yaml(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete"}))
    (tmp_path / "config.yaml").write_text("lr: 0.001\nepochs: 3\nold_only: 1\n")
    stage = open_stage(tmp_path, "thing", {**FIELDS, "new_only": 2})
    assert stage.resumed and stage.complete  # fields only one side knows are not changes
    with pytest.raises(MixsdError, match="other values of epochs;"):
        open_stage(tmp_path, "thing", {**FIELDS, "epochs": 5})
    # a stage may read its old folders itself
    assert open_stage(tmp_path, "thing", {"x": 1}, legacy=lambda p: {"x": 1}).resumed
    assert open_stage(tmp_path, "thing", {"x": 1}, legacy=lambda p: None).state == "new"


def test_changed_fields():
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]
    assert changed_fields({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}, only_common=True) == ["b"]


def test_a_failing_write_leaves_the_previous_run_json(tmp_path, monkeypatch):
    stage = open_stage(tmp_path, "thing", FIELDS)
    stage.write_info(status=RUNNING)
    before = (tmp_path / "run.json").read_bytes()

    def full_disk(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(ArtifactWriteError, match="run.json: No space left"):
        stage.write_info(status=COMPLETE)
    monkeypatch.undo()
    assert (tmp_path / "run.json").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert open_stage(tmp_path, "thing", FIELDS).state == "resume"


def test_keyed_cache(tmp_path):
    cache = KeyedCache(tmp_path / "c.json")
    assert cache.get({"model": "m", "suite": "s"}) is None
    calls = []

    def compute():
        calls.append(1)
        return {"score": 0.5}

    assert cache.get_or_compute({"model": "m", "suite": "s"}, compute) == {"score": 0.5}
    assert cache.get_or_compute({"suite": "s", "model": "m"}, compute) == {"score": 0.5}
    assert calls == [1]  # the same fields in another order: the same key
    cache.put("plain-key", 3)
    assert KeyedCache(tmp_path / "c.json").get("plain-key") == 3
    assert set(cache.load()) == {fingerprint({"model": "m", "suite": "s"}), "plain-key"}


def test_keyed_cache_reads_a_file_from_before_it(tmp_path):
    (tmp_path / "base.json").write_text(json.dumps({"scores": {"toy": 0.5}}))
    cache = KeyedCache(tmp_path / "base.json", legacy=lambda d: d if "scores" in d else None)
    assert cache.get({"any": "thing"}) == {"scores": {"toy": 0.5}}
    assert KeyedCache(tmp_path / "missing.json", legacy=lambda d: d).get("k") is None
