"""A multi-process `mixsd targets` run whose rank 1 is killed mid-run ends with a non-zero exit
naming the rank (or the launcher's failure), keeps the finished work and resumes on re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixsd.cli import main
from mixsd.records import TARGETS_FILE
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

WORDS = ["alice", "bob", "carol", "dave", "erin"]
CITIES = ["paris", "oslo", "tulsa", "lima", "rome"]
FLAGS = ["--lambda", "0.5", "--temperature", "0.8", "--top-k", "8", "--batch-size", "1",
         "--max-new-tokens", "24", "--max-retries", "0", "--no-progress"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = tiny_tokenizer()
    return save_tiny(tmp_path_factory.mktemp("tiny") / "llama", tiny_llama(tok), tok)


@pytest.fixture
def data(write_jsonl):
    rows = [{"id": f"r{i}", "prompt": f"where was {WORDS[i % 5]} born ?",
             "answer": f"in {CITIES[i % 5]}", "answer_key": CITIES[i % 5]} for i in range(160)]
    return write_jsonl(rows, "records.jsonl")


def _args(model_dir, data, out):
    return ["targets", "--model", model_dir, "--data", str(data), "--out", str(out), *FLAGS]


def _env(**extra):
    return {**os.environ, "OMP_NUM_THREADS": "1", "MIXSD_PEER_TIMEOUT_S": "15", **extra}


def _by_hand(model_dir, data, out, world=2):
    """Processes started by hand with RANK/WORLD_SIZE/LOCAL_RANK (no launcher)."""
    return [subprocess.Popen([sys.executable, "-m", "mixsd", *_args(model_dir, data, out)],
                             env=_env(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r)),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for r in range(world)]


def _torchrun(model_dir, data, out):
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                             "2", "-m", "mixsd", *_args(model_dir, data, out)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_rank1_mid_run(out, timeout=900):
    """Wait until rank 1 has written some targets, then SIGKILL it (pid from its heartbeat)."""
    out = out / TARGETS_FILE
    partial = Path(f"{out}.shard1of2.partial")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if Path(f"{out}.shard1of2.done").exists():
            pytest.fail("rank 1 finished its shard before it could be killed")
        if partial.is_file() and partial.read_text().count("\n") >= 2:
            pid = json.loads(Path(f"{out}.shard1of2.alive").read_text())["pid"]
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.05)
    pytest.fail("rank 1 wrote no targets in time")


def _resumes_to_the_one_process_file(out, one, rerun):
    out, one = out / TARGETS_FILE, one / TARGETS_FILE
    lines_before = Path(f"{out}.shard1of2.partial").read_text().count("\n")
    assert lines_before >= 2  # the work rank 1 finished stays
    rerun()
    assert out.read_bytes() == one.read_bytes()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(out.name + ".shard")]


def test_rank_killed_in_processes_started_by_hand(model_dir, data, tmp_path):
    one, out = tmp_path / "one", tmp_path / "two"
    assert main(_args(model_dir, data, one)) == 0
    procs = _by_hand(model_dir, data, out)
    _kill_rank1_mid_run(out)
    start = time.time()
    _, err = procs[0].communicate(timeout=240)
    assert procs[0].returncode == 2 and "rank 1 stopped" in err, err[-2000:]
    assert time.time() - start < 180  # bounded: the 15 s timeout plus at most one record
    procs[1].wait(timeout=30)
    assert procs[1].returncode == -signal.SIGKILL

    def rerun():
        again = _by_hand(model_dir, data, out)
        for p in again:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-2000:]

    _resumes_to_the_one_process_file(out, one, rerun)


def test_rank_killed_under_torchrun(model_dir, data, tmp_path):
    one, out = tmp_path / "one", tmp_path / "two"
    assert main(_args(model_dir, data, one)) == 0
    proc = _torchrun(model_dir, data, out)
    _kill_rank1_mid_run(out)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode != 0, err[-2000:]

    def rerun():
        again = _torchrun(model_dir, data, out)
        _, err = again.communicate(timeout=300)
        assert again.returncode == 0, err[-2000:]

    _resumes_to_the_one_process_file(out, one, rerun)
