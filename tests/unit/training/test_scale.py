"""Scale (issue 23, item 2): TrainingArguments passed through, the epoch evaluation on the
saved checkpoint (as under DeepSpeed/FSDP), the epoch's loss with step logging, drift against
cached base log-probabilities."""

from __future__ import annotations

import json

import pytest
import torch
from training_helpers import target_rows

from mixsd.errors import ConfigError, MixsdError
from mixsd.training import TrainConfig, train
from mixsd.training.run import training_arguments


def test_training_arguments_pass_through(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto",
                              "zero_optimization": {"stage": 0}}))
    plain = training_arguments(TrainConfig(device="cpu"), tmp_path, 8)
    assert plain.report_to in ([], "none", ["none"]) and plain.logging_strategy == "epoch"
    assert not plain.save_only_model and not plain.deepspeed and not plain.fsdp
    cfg = TrainConfig(device="cpu", gradient_checkpointing=True, report_to=["tensorboard"],
                      logging_steps=3, save_only_model=True, fsdp="full_shard auto_wrap",
                      trainer_args={"ddp_timeout": 7200, "optim": "adafactor"})
    args = training_arguments(cfg, tmp_path, 8)
    checkpointing = getattr(args, "activation_checkpointing", None) or args.gradient_checkpointing
    assert checkpointing and args.report_to == ["tensorboard"]
    assert args.logging_strategy == "steps" and args.logging_steps == 3
    assert args.save_only_model and args.fsdp and args.ddp_timeout == 7200
    assert args.optim == "adafactor"
    assert cfg.sharded and cfg.evaluates_checkpoint
    assert TrainConfig(deepspeed=str(ds)).evaluates_checkpoint
    assert not TrainConfig(deepspeed=str(ds), eval_from_checkpoint=False).evaluates_checkpoint


def test_bad_scale_values_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="--lr"):
        TrainConfig(trainer_args={"learning_rate": 1e-3})
    with pytest.raises(ConfigError, match="choose one"):
        TrainConfig(deepspeed="ds.json", fsdp="full_shard")
    with pytest.raises(ConfigError, match="does not run sharded"):
        TrainConfig(method="opsd", fsdp="full_shard")
    with pytest.raises(ConfigError, match="deepspeed: file not found"):
        TrainConfig(model="m", out="o", targets="t", deepspeed=str(tmp_path / "no.json")
                    ).check_complete()
    with pytest.raises(MixsdError, match="trainer_args"):
        training_arguments(TrainConfig(trainer_args={"no_such_field": 1}), tmp_path, 8)


def test_scale_fields_leave_fingerprints_alone():
    decisive = TrainConfig().decisive_dict()
    for name in ("gradient_checkpointing", "deepspeed", "fsdp", "fsdp_config", "report_to",
                 "logging_steps", "save_only_model", "eval_from_checkpoint", "trainer_args"):
        assert name not in decisive


def test_evaluation_on_the_saved_checkpoint_equals_in_memory(make_config, write_rows, tmp_path):
    """The epoch evaluation of the checkpoint loaded back (the sharded path) scores what the
    in-memory evaluation scores; the epoch's loss is its mean with step logging as without;
    gradient checkpointing and lean checkpoints change no number."""
    targets = str(write_rows(target_rows(6)))
    prompt = torch.tensor([[2, 10, 11, 12]])

    def callback(model, tokenizer, epoch):
        with torch.no_grad():
            logits = model(input_ids=prompt.to(next(model.parameters()).device)).logits
        return {"probe": float(logits.float().sum()), "memorization": 0.1 * epoch}

    memory = train(make_config(targets=targets, epochs=2, out=str(tmp_path / "a")),
                   epoch_callback=callback)
    saved = train(make_config(targets=targets, epochs=2, out=str(tmp_path / "b"),
                              eval_from_checkpoint=True, logging_steps=1,
                              gradient_checkpointing=True, save_only_model=True),
                  epoch_callback=callback)
    for a, b in zip(memory.metrics, saved.metrics, strict=True):
        assert b["probe"] == pytest.approx(a["probe"], rel=1e-4)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["memorization"] == a["memorization"]
    assert not (saved.checkpoints[-1] / "optimizer.pt").exists()
    # early stop decided after the evaluation of the saved checkpoint
    stopped = train(make_config(targets=targets, epochs=3, out=str(tmp_path / "c"),
                                eval_from_checkpoint=True, stop_at=0.1),
                    epoch_callback=callback)
    assert stopped.epochs == 1


def test_drift_against_a_cached_reference_equals_two_models(tiny_tok, tiny_model):
    from mixsd.evaluation.callback import make_epoch_evaluator
    from mixsd.evaluation.drift import DriftReference, drift_kl
    from mixsd.testing import tiny_llama

    other = tiny_llama(tiny_tok, seed=3)
    reference = DriftReference.from_model(tiny_model, tiny_tok, batch_size=3)
    assert reference.kl(other) == pytest.approx(drift_kl(tiny_model, other, tiny_tok,
                                                         batch_size=3))
    assert reference.kl(tiny_model) == pytest.approx(0.0, abs=1e-6)
    evaluator = make_epoch_evaluator({}, base_model=tiny_model, batch_size=3)
    first = evaluator(other, tiny_tok, 1)["drift_kl"]
    assert evaluator.base_model is None  # the base model is let go once its reference exists
    assert evaluator(other, tiny_tok, 2)["drift_kl"] == pytest.approx(first)
    assert first == pytest.approx(reference.kl(other))
