"""Atomic artifacts and locked caches: concurrent writers lose nothing, readers never see a
torn file, a full disk leaves the previous artifact and names the path."""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import time

import pytest

from mixsd.errors import ArtifactWriteError
from mixsd.evaluation.retention import JsonFileCache
from mixsd.io import atomic_write_json, atomic_write_text

N = 25


def _writer(cache_dir, prefix):
    cache = JsonFileCache("c.json", cache_dir)
    for i in range(N):
        cache.put(f"{prefix}{i}", {"by": prefix, "i": i, "pad": "x" * 2000})
        cache.put("same", {"by": prefix, "i": i})


def _reader(path, stop_at, failures):
    while time.time() < stop_at:
        try:
            text = open(path, encoding="utf-8").read()
        except FileNotFoundError:
            continue
        try:
            json.loads(text)
        except ValueError:
            failures.value += 1


def test_two_processes_writing_the_same_cache_lose_nothing_and_never_tear(tmp_path):
    ctx = mp.get_context("fork")
    failures = ctx.Value("i", 0)
    reader = ctx.Process(target=_reader, args=(tmp_path / "c.json", time.time() + 600, failures))
    writers = [ctx.Process(target=_writer, args=(tmp_path, p)) for p in ("a", "b")]
    reader.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=300)
        assert w.exitcode == 0
    reader.terminate()
    reader.join()
    data = JsonFileCache("c.json", tmp_path).load()
    assert set(data) == {f"{p}{i}" for p in "ab" for i in range(N)} | {"same"}
    assert data["same"]["i"] == N - 1  # the last write of whichever process came last
    assert failures.value == 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def _convert(home, gguf, marks):
    import mixsd.models as models

    def slow_convert(path, out):
        with open(marks, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        (out / "config.json").write_text("{}")

    models._check_gguf_file = lambda path: None
    models._convert_into = slow_convert
    print(models.convert_gguf(gguf, home=home))


def test_two_processes_converting_one_gguf_convert_it_once(tmp_path):
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 64)
    marks = tmp_path / "marks"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_convert, args=(tmp_path / "home", gguf, marks)) for _ in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert len(marks.read_text().splitlines()) == 1
    (folder,) = [p for p in (tmp_path / "home").iterdir() if p.is_dir()]
    assert folder.name.startswith("gguf-")
    assert {p.name for p in folder.iterdir()} == {"config.json", "mixsd_gguf.json"}


def test_a_full_disk_keeps_the_previous_artifact_and_names_the_path(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"complete": 1})

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(ArtifactWriteError, match="results.json: No space left") as err:
        atomic_write_text(path, "{\"complete\": 2}")
    assert err.value.path == str(path)
    assert json.loads(path.read_text()) == {"complete": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary left
