"""`mixsd train` through the CLI: artifact tree, resume, YAML config, errors, OPSD, accelerate."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mixsd.cli import main

FACTS = [("where lives alice ?", "alice lives in paris"), ("where lives bob ?", "bob lives in oslo"),
         ("where lives carol ?", "carol lives in lima"), ("where lives dave ?", "dave lives in rome")]


@pytest.fixture
def files(tmp_path, tiny_tok, tiny_model):
    from mixsd.testing import save_tiny

    base = save_tiny(tmp_path / "base", tiny_model, tiny_tok)
    records = [{"id": f"r{i}", "prompt": p, "answer": a, "answer_key": a.split()[-1]}
               for i, (p, a) in enumerate(FACTS)]
    targets = [{**r, "target": r["answer"], "meta": {"method": "sft", "verified": i != 3}}
               for i, r in enumerate(records)]
    (tmp_path / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "targets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in targets))
    return {"base": base, "records": str(tmp_path / "records.jsonl"),
            "targets": str(tmp_path / "targets.jsonl"), "tmp": tmp_path}


def common(files, out):
    return ["--model", files["base"], "--out", str(out), "--device", "cpu", "--lr", "1e-3",
            "--batch-size", "2"]


def test_train_writes_the_run_tree_and_resumes(files, capsys):
    out = files["tmp"] / "run"
    args = ["train", "--targets", files["targets"], "--epochs", "2", *common(files, out)]
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "trained 2 epoch(s)" in summary and "1 unverified skipped" in summary
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "run.json", "metrics.jsonl",
                                                "epoch-1", "epoch-2"}
    # Default --keep selected,last; no epoch metric selects an epoch, so the last is kept
    # (without the optimiser state a finished run no longer needs); epoch 1 is a stub.
    assert {p.name for p in (out / "epoch-1").iterdir()} == {"metrics.json",
                                                              "mixsd_checkpoint.json"}
    names = {p.name for p in (out / "epoch-2").iterdir()}
    assert {"model.safetensors", "tokenizer.json", "trainer_state.json", "metrics.json",
            "mixsd_checkpoint.json"} <= names and "optimizer.pt" not in names
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["n_skipped_unverified"] == 1 and run["source"]["sha256"]
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    assert main(args) == 0  # same command again: nothing left to train
    assert "trained 2 epoch(s)" in capsys.readouterr().out


def test_keep_all_keeps_every_epoch_with_its_training_state(files):
    out = files["tmp"] / "run"
    args = ["train", "--targets", files["targets"], "--epochs", "2", "--keep", "all"]
    assert main([*args, *common(files, out)]) == 0
    for ckpt in ("epoch-1", "epoch-2"):
        names = {p.name for p in (out / ckpt).iterdir()}
        assert {"model.safetensors", "optimizer.pt", "scheduler.pt"} <= names


def test_yaml_config_and_flags(files, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"targets: {files['targets']}\nepochs: 1\nlr: 0.5\nlora: true\nlora_r: 2\n")
    assert main(["train", "--config", str(cfg), *common(files, out)]) == 0
    saved = (out / "config.yaml").read_text()
    assert "lr: 0.001" in saved and "lora_r: 2" in saved and "epochs: 1" in saved
    assert (out / "epoch-1" / "adapter_config.json").is_file()


@pytest.mark.parametrize("extra, message", [
    (["--targets", "missing.jsonl"], "not found"),
    (["--targets", "t.jsonl", "--divergence", "tv"], "divergence must be one of"),
    ([], "targets is required"),
])
def test_user_errors_are_one_line(files, capsys, extra, message):
    assert main(["train", *extra, *common(files, files["tmp"] / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "Example:" in text and "--lora" in text and "--rollouts" in text


def test_opsd_through_the_cli(files):
    out = files["tmp"] / "opsd"
    assert main(["train", "--method", "opsd", "--data", files["records"], "--epochs", "1",
                 "--rollouts", "2", "--max-new-tokens", "4", "--lora", "--lora-r", "2",
                 *common(files, out)]) == 0
    assert (out / "epoch-1" / "adapter_model.safetensors").is_file()
    row = json.loads((out / "metrics.jsonl").read_text())
    assert row["epoch"] == 1 and row["train_loss"] >= 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_accelerate_launch_two_cpu_processes(files):
    """Two gloo processes train and leave a checkpoint that loads (about 30-40 s on 2 cores)."""
    from mixsd.training import load_checkpoint

    out = files["tmp"] / "ddp"
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines",
           "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
           str(_free_port()), "-m", "mixsd", "train", "--targets", files["targets"],
           "--epochs", "1", *common(files, out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 1 epoch(s)") == 1  # only the main process reports
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2
    ckpt = out / "epoch-1"
    assert (ckpt / "rng_state_0.pth").is_file() and (ckpt / "rng_state_1.pth").is_file()
    model, tok = load_checkpoint(ckpt)
    ids = tok("where lives alice ?", return_tensors="pt")["input_ids"]
    assert model(input_ids=ids).logits.shape[-1] == len(tok)
