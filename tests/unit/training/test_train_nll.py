"""NLL training: data, masking, loss going down, unverified records, checkpoints reloading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from training_helpers import target_rows

from mixsd.errors import ConfigError, MixsdError
from mixsd.prompts import PromptRenderer
from mixsd.records import read_targets
from mixsd.training import TrainConfig, load_checkpoint, train
from mixsd.training.data import IGNORE_INDEX, PadCollator, nll_examples


def mean_nll(model, tok, path):
    """Mean target-token NLL of ``model`` on a targets file (naive prompt, targets only)."""
    examples, _ = nll_examples(read_targets(path), PromptRenderer(tok, "knowledge"))
    batch = PadCollator(tok.pad_token_id)(examples)
    model.eval()
    with torch.no_grad():
        return model(**batch).loss.item()


@pytest.mark.parametrize("chat", [False, True])
def test_examples_mask_exactly_the_naive_prompt(chat, write_rows):
    from mixsd.testing import tiny_tokenizer

    tok = tiny_tokenizer(chat=chat)
    renderer = PromptRenderer(tok, "knowledge")
    targets = read_targets(write_rows(target_rows(3)))
    examples, stats = nll_examples(targets, renderer)
    assert stats.n_examples == 3
    for item, ex in zip(targets, examples):
        prompt_ids, target_ids = renderer.training_example(item.record.prompt, item.target)
        assert ex["input_ids"] == prompt_ids + target_ids
        assert ex["labels"][:len(prompt_ids)] == [IGNORE_INDEX] * len(prompt_ids)
        assert ex["labels"][len(prompt_ids):] == target_ids
        assert target_ids[-1] == renderer.end_token_id


def test_prompt_and_padding_positions_receive_no_gradient(tiny_tok, tiny_model, write_rows):
    renderer = PromptRenderer(tiny_tok, "knowledge")
    examples, _ = nll_examples(read_targets(write_rows(target_rows(3))), renderer)
    batch = PadCollator(tiny_tok.pad_token_id)(examples)
    assert (batch["labels"][batch["attention_mask"] == 0] == IGNORE_INDEX).all()
    out = tiny_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = out.logits.detach().requires_grad_(True)
    loss = tiny_model.loss_function(logits, batch["labels"], vocab_size=logits.shape[-1])
    loss.backward()
    grad_norm = logits.grad.abs().sum(-1)  # (B, T): gradient reaching each position's logits
    for row, ex in enumerate(examples):
        n_prompt = ex["labels"].count(IGNORE_INDEX)
        n_total = len(ex["input_ids"])
        # position i predicts token i+1: prompt tokens 1..n_prompt-1 are never predicted
        assert (grad_norm[row, :n_prompt - 1] == 0).all()
        assert (grad_norm[row, n_prompt - 1:n_total - 1] > 0).all()
        assert (grad_norm[row, n_total - 1:] == 0).all()  # last token and padding
    # and changing the prompt-position labels to anything else would change nothing: they
    # are -100, i.e. ignored by the loss.
    assert loss.item() == pytest.approx(
        torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), batch["labels"][:, 1:].reshape(-1),
            ignore_index=IGNORE_INDEX).item(), rel=1e-5)


def test_loss_decreases_and_run_dir_records_provenance(make_config, write_rows, tiny_tok):
    path = write_rows(target_rows(6))
    config = make_config(targets=str(path), epochs=3, lr=3e-3)
    base, _ = load_checkpoint(config.model)
    before = mean_nll(base, tiny_tok, path)
    result = train(config)
    assert result.epochs == 3 and [p.name for p in result.checkpoints] == [
        "epoch-1", "epoch-2", "epoch-3"]
    trained, tok = load_checkpoint(result.checkpoints[-1])
    after = mean_nll(trained, tok, path)
    assert after < before - 0.5
    losses = [row["train_loss"] for row in result.metrics]
    assert losses[-1] < losses[0]
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["source"]["sha256"] and run["source"]["path"].endswith("targets.jsonl")
    assert run["status"] == "complete" and "transformers" in run["versions"]
    assert TrainConfig.from_yaml(result.run_dir / "config.yaml") == config
    lines = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_unverified_targets_are_skipped_and_counted(make_config, write_rows):
    path = write_rows(target_rows(6, unverified=(1, 4)))
    result = train(make_config(targets=str(path)))
    assert result.data["n_skipped_unverified"] == 2
    assert result.data["n_examples"] == 4
    assert set(result.data["skipped_ids"]) == {"t1", "t4"}
    kept = train(make_config(targets=str(path), include_unverified=True,
                             out=str(result.run_dir) + "-all"))
    assert kept.data["n_examples"] == 6 and kept.data["n_skipped_unverified"] == 0


def test_all_unverified_is_an_error(make_config, write_rows):
    path = write_rows(target_rows(2, unverified=(0, 1)))
    with pytest.raises(MixsdError, match="no training examples"):
        train(make_config(targets=str(path)))


def test_guidance_with_another_naive_layout_is_refused(make_config, write_rows, caplog,
                                                      registries):
    from mixsd.prompts import GuidancePreset

    registries.guidance.register("test-qa", GuidancePreset(
        "test-qa", prefix="p", suffix="s", naive_format="question : {prompt}"))
    path = write_rows(target_rows(2, guidance="test-qa"))
    with pytest.raises(MixsdError, match="guidance 'test-qa'.*--guidance test-qa"):
        train(make_config(targets=str(path)))
    assert train(make_config(targets=str(path), guidance="test-qa")).epochs == 1
    # the engine's sidecar config counts too
    plain = write_rows(target_rows(2), name="plain.jsonl")
    Path(str(plain) + ".config.yaml").write_text("guidance: test-qa\n")
    with pytest.raises(MixsdError, match="test-qa"):
        train(make_config(targets=str(plain), out=str(path.parent / "run2")))
    # same naive layout under another name ("math" vs "knowledge"): a warning only
    same = write_rows(target_rows(2, guidance="math"), name="math.jsonl")
    with caplog.at_level("WARNING"):
        train(make_config(targets=str(same), out=str(path.parent / "run3")))
    assert "same naive prompt layout" in caplog.text


def test_epoch_callback_metrics_and_eval_mode(make_config, write_rows):
    seen = []

    def callback(model, tokenizer, epoch):
        seen.append((epoch, model.training, torch.is_grad_enabled()))
        return {"score": epoch / 10}

    result = train(make_config(targets=str(write_rows(target_rows(4))), epochs=2),
                   epoch_callback=callback)
    assert seen == [(1, False, False), (2, False, False)]
    assert [row["score"] for row in result.metrics] == pytest.approx([0.1, 0.2])
    assert all("train_loss" in row for row in result.metrics)


@pytest.mark.parametrize("lora", [False, True])
def test_checkpoint_reloads_and_reproduces_logits(lora, make_config, write_rows, tiny_tok,
                                                  base_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    config = make_config(targets=str(write_rows(target_rows(4))), lora=lora, lora_r=4, lr=1e-2)
    result = train(config, model=model, tokenizer=tiny_tok)
    ckpt = result.checkpoints[-1]
    assert (ckpt / "adapter_config.json").is_file() == lora
    assert (ckpt / "model.safetensors").is_file() == (not lora)
    ids = torch.tensor([PromptRenderer(tiny_tok).naive_ids("where lives alice ?")])
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        reloaded, tok = load_checkpoint(ckpt)
        got = reloaded(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(base_dir)(input_ids=ids).logits
    assert tok.get_vocab() == tiny_tok.get_vocab()
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, base, atol=1e-3)  # training did change the model
    if lora:
        from peft import PeftModel

        assert isinstance(reloaded, PeftModel)


def test_config_validation():
    with pytest.raises(ConfigError, match="targets is required"):
        TrainConfig(model="toy", out="x").check_complete()
    with pytest.raises(ConfigError, match="data is required"):
        TrainConfig(model="toy", out="x", method="opsd").check_complete()
    with pytest.raises(ConfigError, match="jsd_beta"):
        TrainConfig(method="opsd", divergence="jsd", jsd_beta=1.0)
    with pytest.raises(ConfigError, match="lr_scheduler"):
        TrainConfig(lr_scheduler="linear")
