"""Killed after epoch 1 and resumed == uninterrupted (weights equal), and run-dir safety."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import target_rows

from mixsd.errors import MixsdError
from mixsd.training import train
from mixsd.training.run import recorded_train_seconds


class Killed(Exception):
    """Stands for a kill at the end of epoch 2, before its checkpoint is written."""


def kill_at(epoch_to_die):
    def callback(model, tokenizer, epoch):
        if epoch == epoch_to_die:
            raise Killed(epoch)
        return {"epoch_seen": float(epoch)}

    return callback


def ok(model, tokenizer, epoch):
    return {"epoch_seen": float(epoch)}


def weights(ckpt):
    name = "adapter_model.safetensors" if (ckpt / "adapter_model.safetensors").is_file() \
        else "model.safetensors"
    return load_file(str(ckpt / name))


@pytest.mark.parametrize("lora", [False, True])
def test_killed_after_epoch_1_and_resumed_equals_uninterrupted(lora, make_config, write_rows,
                                                              tmp_path):
    # 7 examples, batch 2, accumulation 2: shuffled order and a short last step both matter.
    path = write_rows(target_rows(7))
    common = dict(targets=str(path), epochs=2, lr=5e-3, grad_accum=2, lora=lora, lora_r=4,
                  lr_scheduler="cosine", warmup_steps=1, seed=3, keep="all")
    straight = train(make_config(out=str(tmp_path / "straight"), **common), epoch_callback=ok)

    resumed_cfg = make_config(out=str(tmp_path / "resumed"), **common)
    with pytest.raises(Killed):
        train(resumed_cfg, epoch_callback=kill_at(2))
    run_dir = tmp_path / "resumed"
    assert [p.name for p in run_dir.glob("epoch-*")] == ["epoch-1"]
    (run_dir / "checkpoint-99").mkdir()  # debris of a save that was killed half-way
    calls = []

    def counting(model, tokenizer, epoch):
        calls.append(epoch)
        return ok(model, tokenizer, epoch)

    resumed = train(resumed_cfg, epoch_callback=counting)
    assert calls == [2]  # epoch 1 is not re-run
    assert resumed.resumed_from_epoch == 1 and resumed.epochs == 2
    assert not (run_dir / "checkpoint-99").exists()

    a, b = weights(straight.checkpoints[-1]), weights(resumed.checkpoints[-1])
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    first = weights(straight.checkpoints[0])
    assert any(not torch.equal(first[k], a[k]) for k in a)  # epoch 2 did train
    assert [r["train_loss"] for r in straight.metrics] == [r["train_loss"] for r in resumed.metrics]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_finished_run_is_not_retrained(make_config, write_rows):
    config = make_config(targets=str(write_rows(target_rows(3))))
    first = train(config)
    stamp = (first.checkpoints[-1] / "model.safetensors").stat().st_mtime_ns
    again = train(config, epoch_callback=kill_at(1))  # would raise if training ran
    assert again.epochs == 1
    assert (again.checkpoints[-1] / "model.safetensors").stat().st_mtime_ns == stamp
    # The call that trained recorded its seconds; compare adds them to a resumed run's cost.
    assert again.wall_s == 0.0 and first.wall_s > 0
    assert recorded_train_seconds(config.out) == pytest.approx(first.wall_s, abs=1e-2)


def test_resuming_with_another_config_or_targets_is_refused(make_config, write_rows):
    path = write_rows(target_rows(3))
    train(make_config(targets=str(path), epochs=1))
    with pytest.raises(MixsdError, match=r"training run made with other values of lr; "
                       r"re-run the same command to resume it or choose another --out$"):
        train(make_config(targets=str(path), epochs=1, lr=1e-4))
    path.write_text(path.read_text().replace("paris", "rome"))
    with pytest.raises(MixsdError, match="other values of source_sha256;"):
        train(make_config(targets=str(path), epochs=1))


def test_a_run_folder_written_before_the_artifact_layer_resumes_or_refuses(make_config,
                                                                           write_rows):
    """An old run.json has no fingerprint: its config.yaml and source sha256 decide."""
    path = write_rows(target_rows(3))
    config = make_config(targets=str(path), epochs=1)
    first = train(config)
    info = json.loads((first.run_dir / "run.json").read_text())
    for key in ("fingerprint", "fields", "stage"):
        info.pop(key)
    (first.run_dir / "run.json").write_text(json.dumps(info))
    assert train(config).epochs == 1  # the same config: nothing to train
    with pytest.raises(MixsdError, match="other values of lr;"):
        train(make_config(targets=str(path), epochs=1, lr=1e-4))
    path.write_text(path.read_text().replace("paris", "rome"))
    with pytest.raises(MixsdError, match="other values of source_sha256;"):
        train(config)


def test_trains_on_a_targets_folder(make_config, write_rows, tmp_path):
    folder = tmp_path / "targets-dir"
    folder.mkdir()
    write_rows(target_rows(3)).replace(folder / "targets.jsonl")
    result = train(make_config(targets=str(folder), epochs=1))
    info = json.loads((result.run_dir / "run.json").read_text())
    assert info["source"]["path"] == str((folder / "targets.jsonl").resolve())
    assert info["status"] == "complete" and info["fields"]["source_sha256"] == \
        info["source"]["sha256"]
