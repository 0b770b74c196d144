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
    Reuse,
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
    stage = open_stage(tmp_path / "s", "thing", FIELDS, reuse=Reuse(mutable=("device",)))
    assert stage.state == "new" and not stage.resumed and "device" not in stage.fields
    stage.write_info(status=RUNNING, extra=1)
    info = json.loads((tmp_path / "s" / "run.json").read_text())
    assert info["status"] == RUNNING and info["stage"] == "thing" and info["extra"] == 1
    assert info["fingerprint"] == stage.fingerprint and info["fields"]["lr"] == 0.001
    # a mutable field may change: the same run, resumed (not complete yet)
    again = open_stage(tmp_path / "s", "thing", {**FIELDS, "device": "cuda"}, reuse=Reuse(mutable=("device",)))
    assert again.resumed and not again.complete
    again.write_info(status=COMPLETE)
    assert open_stage(tmp_path / "s", "thing", FIELDS, reuse=Reuse(mutable=("device",))).complete


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
    assert open_stage(tmp_path, "thing", other, reuse=Reuse(has_outputs=False)).state == "new"


def test_a_folder_from_before_the_layer_is_compared_by_its_config_yaml(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete"}))
    (tmp_path / "config.yaml").write_text("lr: 0.001\nepochs: 3\nold_only: 1\n")
    stage = open_stage(tmp_path, "thing", {**FIELDS, "new_only": 2})
    assert stage.resumed and stage.complete  # fields only one side knows are not changes
    with pytest.raises(MixsdError, match="other values of epochs;"):
        open_stage(tmp_path, "thing", {**FIELDS, "epochs": 5})
    # a stage may read its old folders itself
    assert open_stage(tmp_path, "thing", {"x": 1}, reuse=Reuse(legacy=lambda p: {"x": 1})).resumed
    assert open_stage(tmp_path, "thing", {"x": 1}, reuse=Reuse(legacy=lambda p: None)).state == "new"


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


# -- one writer per folder (issue 27) -------------------------------------------------------
def _hold(folder, ready):
    """A real second process: opens the stage (taking its lock), says so, waits to be killed."""
    import time

    open_stage(folder, "thing", FIELDS)
    ready.write_text("held")
    time.sleep(300)


def test_a_second_process_is_refused_naming_the_holder_and_a_dead_holder_is_stale(tmp_path):
    import multiprocessing as mp
    import time

    from mixsd.errors import StageBusyError

    ready = tmp_path / "ready"
    holder = mp.get_context("fork").Process(target=_hold, args=(tmp_path / "s", ready))
    holder.start()
    try:
        deadline = time.time() + 120
        while not ready.exists() and holder.is_alive() and time.time() < deadline:
            time.sleep(0.02)
        assert ready.exists()
        with pytest.raises(StageBusyError) as err:
            open_stage(tmp_path / "s", "thing", FIELDS)
        message = str(err.value)
        assert "\n" not in message and str(tmp_path / "s") in message
        assert f"pid {holder.pid}" in message and "another --out" in message
        holder.kill()  # SIGKILL: no cleanup, the lock file stays behind
        holder.join(60)
        assert (tmp_path / ".s.lock").is_file()
        with open_stage(tmp_path / "s", "thing", FIELDS) as stage:  # stale: taken
            assert stage.state == "new"
        assert not (tmp_path / ".s.lock").exists()  # released and removed
    finally:
        if holder.is_alive():
            holder.kill()


def test_the_lock_is_reentrant_within_a_process_and_released_by_close(tmp_path):
    first = open_stage(tmp_path / "s", "thing", FIELDS)
    second = open_stage(tmp_path / "s", "thing", FIELDS)  # the same process: allowed
    second.close()
    assert (tmp_path / ".s.lock").is_file()  # still held by the first
    first.close()
    first.close()  # idempotent
    assert not (tmp_path / ".s.lock").exists()
    # a read-only open takes no lock
    open_stage(tmp_path / "s", "thing", FIELDS, lock=False)
    assert not (tmp_path / ".s.lock").exists()


def test_overwrite_builds_beside_and_renames_over_once_complete(tmp_path):
    from mixsd.artifacts import build_dir

    folder = tmp_path / "s"
    with open_stage(folder, "thing", FIELDS) as stage:
        folder.mkdir()
        (folder / "out.txt").write_text("old")
        stage.write_info(status=COMPLETE)
    other = {**FIELDS, "lr": 0.5}
    with open_stage(folder, "thing", other, overwrite=True) as stage:
        assert stage.path == build_dir(folder) and stage.dest == folder
        (stage.path / "out.txt").write_text("new, cut")
        stage.write_info(status=RUNNING)
    # cut before it completed: the old folder is whole and still opens as complete
    assert (folder / "out.txt").read_text() == "old"
    assert open_stage(folder, "thing", FIELDS, lock=False).complete
    # the same --overwrite resumes the build, then replaces the folder
    with open_stage(folder, "thing", other, overwrite=True) as stage:
        assert stage.resumed
        (stage.path / "out.txt").write_text("new")
        stage.write_info(status=COMPLETE)
        assert stage.commit() == folder
    assert (folder / "out.txt").read_text() == "new"
    assert open_stage(folder, "thing", other, lock=False).complete
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_a_commit_cut_between_its_two_renames_is_finished_by_the_next_open(tmp_path):
    from mixsd.artifacts import build_dir, replaced_dir

    folder = tmp_path / "s"
    for name, status in ((folder, COMPLETE), (build_dir(folder), COMPLETE)):
        name.mkdir()
        (name / "run.json").write_text(json.dumps({"status": status, "who": name.name}))
    folder.rename(replaced_dir(folder))  # the first rename of the commit, then a kill
    with open_stage(folder, "thing", FIELDS):
        pass
    assert json.loads((folder / "run.json").read_text())["who"] == ".s.overwrite"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    # a build that was not complete: the old folder comes back
    (build_dir(folder)).mkdir()
    (build_dir(folder) / "run.json").write_text(json.dumps({"status": RUNNING}))
    folder.rename(replaced_dir(folder))
    with open_stage(folder, "thing", FIELDS):
        pass
    assert json.loads((folder / "run.json").read_text())["who"] == ".s.overwrite"


def test_an_in_place_overwrite_keeps_the_old_folder_aside_until_complete(tmp_path):
    from mixsd.artifacts import replaced_dir

    folder = tmp_path / "c"
    with open_stage(folder, "comparison", FIELDS) as stage:
        (folder / "runs").mkdir(parents=True)
        stage.write_info(status=COMPLETE)
    other = {**FIELDS, "epochs": 9}
    with open_stage(folder, "comparison", other, overwrite=True, in_place=True) as stage:
        assert stage.path == folder and stage.state == "new"
        stage.write_info(status=RUNNING)
    old = replaced_dir(folder)
    assert (old / "runs").is_dir() and open_stage(old, "comparison", FIELDS, lock=False).complete
    # without --overwrite the cut replacement is refused, saying where the old one is
    with pytest.raises(MixsdError, match="kept whole in .*c.replaced"):
        open_stage(folder, "comparison", FIELDS, overwrite_flag="--overwrite", in_place=True)
    # the same --overwrite resumes the new one; completing it deletes the old one
    with open_stage(folder, "comparison", other, overwrite=True, in_place=True) as stage:
        assert stage.resumed
        stage.write_info(status=COMPLETE)
        stage.commit()
    assert not old.exists() and not (folder / "runs").exists()


def test_require_complete_refuses_a_running_folder(tmp_path):
    from mixsd.artifacts import require_complete

    require_complete(tmp_path, "targets folder", "finish it")  # no run.json: a plain folder
    (tmp_path / "run.json").write_text(json.dumps({"status": RUNNING}))
    with pytest.raises(MixsdError, match=r"not a complete targets folder \(status running"):
        require_complete(tmp_path, "targets folder", "finish it")
