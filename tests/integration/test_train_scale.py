"""Two CPU processes (DDP, and FSDP full sharding, over gloo: what this machine allows of
issue 23's scale path): the epoch evaluation on the saved checkpoint runs once, on the main
process, on the whole weights of that epoch, with step logging and gradient checkpointing
(DDP) passed through."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, os, sys
import torch
from mixsd.training import TrainConfig, train

PROMPT = torch.tensor([[2, 10, 11, 12]])

def callback(model, tokenizer, epoch):
    with torch.no_grad():
        probe = float(model(input_ids=PROMPT).logits.sum())
    return {"probe": probe, "rank": float(os.environ.get("RANK", "0")), "memorization": 0.5}

base, targets, out, extra = sys.argv[1:5]
config = TrainConfig(model=base, targets=targets, out=out, epochs=2, lr=1e-3, batch_size=2,
                     device="cpu", progress=False, keep="all", report_to=[],
                     **json.loads(extra))
result = train(config, epoch_callback=callback)
if result.main_process:
    print("METRICS", json.dumps(result.metrics))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# DDP: the evaluation on the checkpoint asked for; FSDP: it is how a sharded run evaluates.
SHARDING = {
    "ddp": {"eval_from_checkpoint": True, "logging_steps": 1, "gradient_checkpointing": True},
    "fsdp": {"fsdp": "full_shard", "fsdp_config": "FSDP_CONFIG"},
}


@pytest.mark.parametrize("sharding", sorted(SHARDING))
def test_two_processes_evaluate_the_saved_checkpoint(sharding, tmp_path, tiny_tok, tiny_model):
    import torch

    from mixsd.testing import save_tiny
    from mixsd.training import load_checkpoint

    base = save_tiny(tmp_path / "base", tiny_model, tiny_tok)
    rows = [{"id": f"r{i}", "prompt": f"where lives {n} ?", "answer": f"{n} lives in {c}",
             "answer_key": c, "target": f"{n} lives in {c}", "meta": {"verified": True}}
            for i, (n, c) in enumerate([("alice", "paris"), ("bob", "oslo"), ("carol", "lima"),
                                         ("dave", "rome")])]
    targets = tmp_path / "targets.jsonl"
    targets.write_text("".join(json.dumps(r) + "\n" for r in rows))
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    fsdp_config = tmp_path / "fsdp.json"  # whole weights in the checkpoint, as the docs say
    fsdp_config.write_text(json.dumps({"state_dict_type": "FULL_STATE_DICT"}))
    extra = json.dumps(SHARDING[sharding]).replace("FSDP_CONFIG", str(fsdp_config))
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
           "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(_free_port()), str(script), base, str(targets), str(out), extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("METRICS") == 1
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in metrics] == [1, 2]
    assert all(m["rank"] == 0.0 and "train_loss" in m for m in metrics)
    assert json.loads((out / "run.json").read_text())["world_size"] == 2
    for m in metrics:  # the probe is that epoch's weights
        model, _ = load_checkpoint(out / f"epoch-{m['epoch']}", device="cpu", dtype="float32")
        with torch.no_grad():
            probe = float(model(input_ids=torch.tensor([[2, 10, 11, 12]])).logits.sum())
        assert abs(probe - m["probe"]) < 1e-3 * max(1.0, abs(probe))
    assert metrics[0]["probe"] != metrics[1]["probe"]
