"""OPSD: rollouts, the teacher sees the expert prompt, a step lowers the divergence, resume."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import FACTS

from mixsd.prompts import PromptRenderer
from mixsd.training import train
from mixsd.training.checkpoints import EpochCheckpointCallback
from mixsd.training.opsd import rollout_logits
from mixsd.training.run import apply_lora, build_dataset, build_trainer


@pytest.fixture
def records_path(write_rows):
    rows = [{"id": f"r{i}", "prompt": p, "answer": a, "answer_key": a.split()[-1]}
            for i, (p, a) in enumerate(FACTS[:4])]
    return write_rows(rows, "records.jsonl")


@pytest.fixture
def opsd(make_config, records_path, tiny_tok, base_dir):
    """Build an OPSD trainer the way ``train`` does; return (trainer, base model, batch)."""
    from transformers import AutoModelForCausalLM

    def _make(lora):
        config = make_config(method="opsd", data=str(records_path), lora=lora, lora_r=4,
                             rollouts=2, max_new_tokens=6, batch_size=2)
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        renderer = PromptRenderer(tiny_tok, config.guidance)
        dataset, _ = build_dataset(config, renderer, model)
        if lora:
            model = apply_lora(model, config)
        callback = EpochCheckpointCallback(config.out, tiny_tok, {}, None)
        trainer = build_trainer(config, model, tiny_tok, dataset, renderer, callback)
        base = AutoModelForCausalLM.from_pretrained(base_dir).eval()
        batch = trainer.data_collator([dataset[0], dataset[1]])
        return trainer, base, batch

    return _make


def perturb_student(trainer, lora):
    """Make the student differ from the base model (as after some training)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in trainer.model.named_parameters():
            if p.requires_grad and (not lora or "lora_B" in name):
                p.add_(0.5 * torch.randn_like(p))


@pytest.mark.parametrize("lora", [False, True])
def test_teacher_is_the_base_model_on_the_expert_prompt(lora, opsd):
    trainer, base, batch = opsd(lora)
    assert (trainer.teacher is None) == lora  # LoRA: no second copy, the adapter is disabled
    perturb_student(trainer, lora)
    naive = [ids for ids in batch["naive_ids"] for _ in range(2)]
    expert = [ids for ids in batch["expert_ids"] for _ in range(2)]
    assert all(len(e) > len(n) for e, n in zip(expert, naive))
    trainer.model.train()
    torch.manual_seed(0)
    rollouts = trainer.sample_rollouts(batch["naive_ids"])
    teacher, mask = trainer.teacher_logits(expert, rollouts)
    assert trainer.model.training  # sampling and the teacher pass restore train mode
    pad = trainer.pad_id
    with torch.no_grad():
        base_expert, _ = rollout_logits(base, expert, rollouts, pad)
        base_naive, _ = rollout_logits(base, naive, rollouts, pad)
        student_expert, _ = rollout_logits(trainer.model, expert, rollouts, pad)
    m = mask[..., None].expand_as(teacher)
    assert torch.allclose(teacher[m], base_expert[m], atol=1e-5)
    assert not torch.allclose(teacher[m], base_naive[m], atol=1e-2)  # the prompt matters
    assert not torch.allclose(teacher[m], student_expert[m], atol=1e-2)  # not the student


def test_rollouts_are_seeded_and_cut_after_the_first_stop(opsd):
    trainer, _, batch = opsd(False)
    torch.manual_seed(5)
    first = trainer.sample_rollouts(batch["naive_ids"])
    torch.manual_seed(5)
    again = trainer.sample_rollouts(batch["naive_ids"])
    assert first == again and len(first) == 2 * len(batch["naive_ids"])
    stops = set(trainer.stop_token_ids)
    for r in first:
        assert 1 <= len(r) <= 6
        assert not stops.intersection(r[:-1])
        assert r[-1] in stops or len(r) == 6


@pytest.mark.parametrize("divergence", ["reverse_kl", "forward_kl", "jsd"])
def test_one_step_lowers_the_divergence_on_that_batch(divergence, opsd):
    from mixsd.training.divergences import get_divergence

    trainer, _, batch = opsd(False)
    trainer.divergence = get_divergence(divergence, beta=0.5)
    perturb_student(trainer, False)
    naive = [ids for ids in batch["naive_ids"] for _ in range(2)]
    expert = [ids for ids in batch["expert_ids"] for _ in range(2)]
    torch.manual_seed(0)
    rollouts = trainer.sample_rollouts(batch["naive_ids"])
    model = trainer.model
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    before = trainer.rollout_loss(model, naive, expert, rollouts)
    assert before.item() > 0
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = trainer.rollout_loss(model, naive, expert, rollouts)
    assert after.item() < before.item()


def test_opsd_train_killed_and_resumed_equals_uninterrupted(make_config, records_path, tmp_path):
    common = dict(method="opsd", data=str(records_path), epochs=2, rollouts=2, max_new_tokens=5,
                  batch_size=2, lr=1e-2, seed=7)

    def die_at_2(model, tokenizer, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return {}

    straight = train(make_config(out=str(tmp_path / "a"), **common))
    cfg = make_config(out=str(tmp_path / "b"), **common)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, epoch_callback=die_at_2)
    resumed = train(cfg)
    assert resumed.resumed_from_epoch == 1
    assert all(row["train_loss"] >= 0 for row in straight.metrics)
    a = load_file(str(straight.checkpoints[-1] / "model.safetensors"))
    b = load_file(str(resumed.checkpoints[-1] / "model.safetensors"))
    base = load_file(str(tmp_path / "base" / "model.safetensors"))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert any(not torch.equal(a[k], base[k]) for k in a)


def test_a_given_teacher_replaces_the_copy_and_trains_the_same(make_config, records_path,
                                                               tmp_path, base_dir, opsd):
    """Issue 23: full-FT OPSD copied the model as its teacher; a comparison already holds the
    base model. Given as ``teacher`` it is used as it is (no copy, weights and flags left
    alone) and the run equals the one with the copy, weight for weight."""
    from transformers import AutoModelForCausalLM

    common = dict(method="opsd", data=str(records_path), epochs=2, rollouts=2,
                  max_new_tokens=5, batch_size=2, lr=1e-2, seed=7)
    copied = train(make_config(out=str(tmp_path / "copy"), **common))
    held = AutoModelForCausalLM.from_pretrained(base_dir)
    before = {k: v.clone() for k, v in held.state_dict().items()}
    given = train(make_config(out=str(tmp_path / "given"), **common), teacher=held)
    a = load_file(str(copied.checkpoints[-1] / "model.safetensors"))
    b = load_file(str(given.checkpoints[-1] / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], before[k]) for k in a)  # it trained
    assert all(torch.equal(v, before[k]) for k, v in held.state_dict().items())
    assert all(p.requires_grad for p in held.parameters())  # the caller's model, untouched

    trainer, _, _ = opsd(False)
    from mixsd.training.opsd import OPSDTrainer

    again = OPSDTrainer(model=trainer.model, args=trainer.args, opsd_config=trainer.opsd,
                        stop_token_ids=trainer.stop_token_ids, teacher=held,
                        processing_class=trainer.processing_class)
    assert again.teacher is held
