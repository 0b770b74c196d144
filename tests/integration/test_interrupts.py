"""SIGINT / SIGTERM mid-run of `targets`, `train` and `compare`: a one-line message, exit 130
or 143, every finished artifact valid, and the same command resumes to the result of an
uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from stage_helpers import NAMES, records

from mixsd.cli import main


def _interrupt_when(args, ready, sig, timeout=900):
    """Run `mixsd ARGS` in a subprocess, send ``sig`` once ``ready()`` holds; return it done."""
    # A shell that starts the test suite in the background ignores SIGINT for it, and Python
    # keeps an inherited SIG_IGN: give the child the default disposition, as a terminal does.
    proc = subprocess.Popen([sys.executable, "-m", "mixsd", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    while not ready():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"finished before the signal could be sent: {proc.communicate()[1]}")
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _one_line(err, word):
    lines = [line for line in err.strip().splitlines() if line.startswith("mixsd ")]
    assert len(lines) == 1 and word in lines[0] and "re-run the same command" in lines[0], err
    assert "Traceback" not in err, err[-2000:]


def test_targets_sigterm_then_resume(model_dir, write_jsonl, tmp_path):
    data = write_jsonl(records(40), "records.jsonl")
    flags = ["--lambda", "0.5", "--temperature", "0.8", "--top-k", "8", "--batch-size", "1",
             "--max-new-tokens", "24", "--max-retries", "0", "--no-progress"]
    straight, out = tmp_path / "straight", tmp_path / "t"
    assert main(["targets", "--model", model_dir, "--data", str(data), "--out", str(straight),
                 *flags]) == 0
    args = ["targets", "--model", model_dir, "--data", str(data), "--out", str(out), *flags]
    partial = out / "targets.jsonl.partial"

    def some_written():
        return partial.is_file() and partial.read_text().count("\n") >= 3

    code, err = _interrupt_when(args, some_written, signal.SIGTERM)
    assert code == 143
    _one_line(err, "terminated")
    rows = partial.read_text().splitlines()
    assert 3 <= len(rows) < 40 and all(json.loads(r)["target"] is not None for r in rows)
    assert main(args) == 0
    assert (out / "targets.jsonl").read_bytes() == (straight / "targets.jsonl").read_bytes()


def test_train_sigint_then_resume(model_dir, write_jsonl, tmp_path):
    from mixsd.training import load_checkpoint

    rows = [{**r, "target": r["answer"], "meta": {"method": "sft", "verified": True}}
            for r in records(12)]
    targets = write_jsonl(rows, "targets.jsonl")
    # 12 epochs: the ten after the signal take seconds, so the signal lands mid-run even on a
    # loaded machine (with 4, epochs 3-4 could finish before it was handled).
    common = ["--model", model_dir, "--targets", str(targets), "--epochs", "12", "--lr", "1e-3",
              "--batch-size", "2", "--device", "cpu", "--seed", "1"]
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert main(["train", "--out", str(straight), *common]) == 0
    args = ["train", "--out", str(out), *common]
    code, err = _interrupt_when(args, lambda: (out / "epoch-2" / "mixsd_checkpoint.json")
                                .is_file(), signal.SIGINT)
    assert code == 130
    _one_line(err, "interrupted")
    assert not (out / "epoch-12").exists()
    assert main(args) == 0
    a, _ = load_checkpoint(straight / "epoch-12")
    b, _ = load_checkpoint(out / "epoch-12")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert (pa == pb).all(), name
    losses = [[r["train_loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text()
                                            .splitlines())] for d in (straight, out)]
    assert losses[0] == losses[1]


def test_compare_sigterm_then_resume(model_dir, write_jsonl, tmp_path):
    data = write_jsonl(records(6), "facts.jsonl")
    held = write_jsonl([{"id": f"h{i}", "prompt": f"{n} is the city of", "answer": "red",
                         "answer_key": "red"} for i, n in enumerate(NAMES[:3])], "held.jsonl")
    common = ["--model", model_dir, "--corpus", str(data), "--methods", "sft,mixsd:0.5",
              "--epochs", "3", "--lr", "1e-2", "--seeds", "0", "--suites", f"records:{held}",
              "--max-new-tokens", "6", "--batch-size", "2", "--fisher-examples", "3",
              "--device", "cpu", "--max-retries", "0", "--include-unverified"]
    straight, out = tmp_path / "straight", tmp_path / "c"
    assert main(["compare", "--out", str(straight), *common]) == 0
    args = ["compare", "--out", str(out), *common]

    def trained_an_epoch():
        return any(out.glob("runs/*/epoch-1/mixsd_checkpoint.json"))

    code, err = _interrupt_when(args, trained_an_epoch, signal.SIGTERM)
    assert code == 143
    _one_line(err, "terminated")
    assert main(args) == 0
    runs = [json.loads((d / "results.json").read_text())["runs"] for d in (straight, out)]
    keys = ("selected_epoch", "memorization", "retention_mean", "fisher")
    assert [{k: r[k] for k in keys} for r in runs[0]] == [{k: r[k] for k in keys}
                                                          for r in runs[1]]
    # --keep selected,last (the default): the Fisher read the selected epoch; others are stubs.
    for run in runs[1]:
        run_dir = out / "runs" / f"{run['label']}-lr0.01-s0"
        full = {e for e in (1, 2, 3) if (run_dir / f"epoch-{e}" / "config.json").is_file()}
        assert full == {run["selected_epoch"], 3}
