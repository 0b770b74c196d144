"""Multi-process coordination through files: heartbeats, a silent peer is named, env parsing."""

from __future__ import annotations

import json
import os
import time

import pytest

from mixsd.errors import ConfigError, PeerLostError
from mixsd.targets.shards import (
    Shard,
    check_peers,
    current_shard,
    heartbeat,
    heartbeat_path,
    peer_timeout_s,
    wait_for_peers,
)


def test_rank_and_world_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert current_shard() == Shard(0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert current_shard() == Shard(2, 3, 2) and current_shard().suffix() == ".shard2of3"
    monkeypatch.setenv("RANK", "3")
    with pytest.raises(ConfigError, match="RANK must be in"):
        current_shard()
    monkeypatch.setenv("MIXSD_PEER_TIMEOUT_S", "zero")
    with pytest.raises(ConfigError, match="MIXSD_PEER_TIMEOUT_S"):
        peer_timeout_s()


def test_a_silent_peer_is_named_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_PEER_TIMEOUT_S", "0.3")
    out, shard = tmp_path / "t.jsonl", Shard(0, 3)
    stale = heartbeat_path(out, shard, 2)
    stale.write_text("{}")
    os.utime(stale, (time.time() - 100, time.time() - 100))  # left by an earlier run
    since = time.time()
    # A stale file from an earlier run is not held against a peer that is still starting.
    assert check_peers(out, shard, lambda r: r == 1, [1, 2], since, "x") == [2]
    with heartbeat(out, Shard(1, 3), lambda r: True):  # rank 1 beats; rank 2 is silent
        start = time.time()
        with pytest.raises(PeerLostError, match="rank 2 stopped") as err:
            wait_for_peers(out, shard, lambda r: False, [1, 2], "waiting for its shard")
        assert err.value.rank == 2 and 0.3 <= time.time() - start < 3
        beat = json.loads(heartbeat_path(out, shard, 1).read_text())
        assert beat["rank"] == 1 and beat["pid"] == os.getpid()


def test_the_heartbeat_thread_reports_a_lost_peer_between_records(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_PEER_TIMEOUT_S", "0.2")
    out = tmp_path / "t.jsonl"
    with heartbeat(out, Shard(1, 2), lambda r: False) as beat:
        beat.raise_if_peer_lost()  # nothing yet
        deadline = time.time() + 5
        while beat.lost is None and time.time() < deadline:
            time.sleep(0.05)
        with pytest.raises(PeerLostError, match="rank 0"):
            beat.raise_if_peer_lost()
