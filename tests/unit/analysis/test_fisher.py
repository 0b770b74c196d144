import copy
import json

import pytest
import torch

from mixsd.analysis.fisher import (
    checkpoint_dirs,
    empirical_fisher,
    example_nll,
    fisher_displacement,
    layer_group,
    load_checkpoint_parameters,
    parameters_of,
    suite_examples,
)
from mixsd.errors import MixsdError
from mixsd.evaluation.qa import QASuite
from mixsd.records import KnowledgeRecord
from mixsd.testing import save_tiny


@pytest.fixture
def examples(tiny_tok):
    suite = QASuite("held", [KnowledgeRecord("1", "where is alice born ?", "in paris", "paris"),
                             KnowledgeRecord("2", "what is 2 + 3 ?", "it is 5", "5"),
                             KnowledgeRecord("3", "who works in oslo ?", "bob", "bob")])
    return suite_examples({"held": suite}, tiny_tok)


def test_layer_groups():
    assert layer_group("model.layers.11.self_attn.q_proj.weight") == "layer.11"
    assert layer_group("transformer.h.0.attn.c_attn.weight") == "layer.0"
    assert layer_group("model.embed_tokens.weight") == "embeddings"
    assert layer_group("lm_head.weight") == "lm_head"
    assert layer_group("model.norm.weight") == "other"


def test_fisher_matches_finite_difference_per_example_gradients(tiny_tok, examples):
    # GPT-2 runs fully in float64 (Llama's RMSNorm computes in float32, too noisy for FD).
    from mixsd.testing import tiny_gpt2

    model = tiny_gpt2(tiny_tok, hidden=16, layers=1).double()
    fisher = empirical_fisher(model, examples)
    params = dict(model.named_parameters())
    eps = 1e-4
    for name, index in [("transformer.h.0.attn.c_attn.weight", (3, 5)),
                        ("transformer.h.0.mlp.c_proj.weight", (1, 7)),
                        ("transformer.wte.weight", (12, 2)),  # tied with the lm_head
                        ("transformer.ln_f.bias", (4,))]:
        p = params[name]
        squares = []
        for prompt_ids, target_ids in examples:
            with torch.no_grad():
                old = p[index].item()
                p[index] = old + eps
                up = float(example_nll(model, prompt_ids, target_ids))
                p[index] = old - eps
                down = float(example_nll(model, prompt_ids, target_ids))
                p[index] = old
            squares.append(((up - down) / (2 * eps)) ** 2)
        expected = sum(squares) / len(squares)
        assert expected > 0
        assert float(fisher[name][index]) == pytest.approx(expected, rel=1e-4)
    assert set(fisher) == set(params)


def test_fisher_matches_hf_loss_backward_per_example(tiny_tok, tiny_model, examples):
    """Brute force through another path: HF's own loss (labels, mean) and .backward()."""
    fisher = empirical_fisher(tiny_model, examples)
    expected = {n: torch.zeros_like(p) for n, p in tiny_model.named_parameters()}
    for prompt_ids, target_ids in examples:
        tiny_model.zero_grad()
        ids = torch.tensor([prompt_ids + target_ids])
        labels = torch.tensor([[-100] * len(prompt_ids) + target_ids])
        loss = tiny_model(input_ids=ids, labels=labels).loss * len(target_ids)
        loss.backward()
        for n, p in tiny_model.named_parameters():
            expected[n] += p.grad ** 2
    tiny_model.zero_grad()
    for n, value in expected.items():
        assert torch.allclose(fisher[n], value / len(examples), rtol=1e-4, atol=1e-12), n


def test_displacement_is_fisher_weighted_and_grouped(tiny_tok, tiny_model, examples):
    fisher = empirical_fisher(tiny_model, examples)
    theta0 = parameters_of(tiny_model)
    assert fisher_displacement(fisher, theta0, tiny_model)["total"] == 0.0
    moved = copy.deepcopy(tiny_model)
    name = "model.layers.1.mlp.up_proj.weight"
    with torch.no_grad():
        dict(moved.named_parameters())[name].add_(0.1)
    out = fisher_displacement(fisher, theta0, moved)
    expected = float((fisher[name] * 0.01).sum())
    assert out["total"] == pytest.approx(expected, rel=1e-4)
    assert out["per_layer"]["layer.1"] == pytest.approx(expected, rel=1e-4)
    assert out["per_layer"]["layer.0"] == 0.0
    assert list(out["per_layer"])[:3] == ["embeddings", "layer.0", "layer.1"]


def test_checkpoints_full_and_lora(tmp_path, tiny_tok, tiny_model):
    from peft import LoraConfig, get_peft_model

    base = save_tiny(tmp_path / "base", tiny_model, tiny_tok)
    run = tmp_path / "run"
    full = copy.deepcopy(tiny_model)
    with torch.no_grad():
        full.model.norm.weight.add_(1.0)
    save_tiny(run / "epoch-1", full, tiny_tok)
    lora = get_peft_model(copy.deepcopy(tiny_model),
                          LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
    lora.save_pretrained(run / "epoch-2")
    dirs = checkpoint_dirs([run])
    assert [d.name for d in dirs] == ["epoch-1", "epoch-2"]
    theta0 = parameters_of(tiny_model)
    p1 = load_checkpoint_parameters(dirs[0])
    assert torch.allclose(p1["model.norm.weight"], theta0["model.norm.weight"] + 1.0)
    p2 = load_checkpoint_parameters(dirs[1], base)
    name = "model.layers.0.self_attn.q_proj.weight"
    assert set(p2) == set(theta0)
    assert not torch.allclose(p2[name], theta0[name])       # the adapter was merged
    assert torch.equal(p2["model.norm.weight"], theta0["model.norm.weight"])
    with pytest.raises(MixsdError, match="LoRA adapter"):
        load_checkpoint_parameters(dirs[1])
    # The one checkpoint loader: a run's recorded base model is used when none is passed.
    (dirs[1] / "mixsd_checkpoint.json").write_text(json.dumps({"base_model": str(base)}))
    recorded = load_checkpoint_parameters(dirs[1])
    assert all(torch.equal(recorded[n], p2[n]) for n in p2)
    with pytest.raises(MixsdError, match="neither a checkpoint"):
        checkpoint_dirs([tmp_path / "nothing"])
