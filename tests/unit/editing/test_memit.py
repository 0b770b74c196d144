"""MEMIT on a tiny in-process Llama: locating, the closed form, and what an edit does."""

import copy
import random

import pytest
import torch

from mixsd.editing import EditConfig, apply_memit, closed_form_update, edit_model
from mixsd.editing.covariance import cache_path, model_fingerprint, second_moments
from mixsd.editing.locate import default_layers, down_proj, subject_last_token
from mixsd.errors import MixsdError
from mixsd.records import KnowledgeRecord
from mixsd.testing import WORDS, tiny_gpt2, tiny_llama

# Prompts end with the subject, so the edited residual feeds the next-token prediction
# directly (a random model's attention would not carry it from an earlier position).
FACTS = [("the city of alice", "alice", "oslo"), ("the city of bob", "bob", "lima"),
         ("the job of carol", "carol", "paris")]
CONFIG = dict(model="tiny", guidance="knowledge", layers=[0], cov_weight=1.0, v_steps=80,
              v_lr=0.2, v_weight_decay=0.01, clamp_norm=10.0, kl_prompts=["{subject} is a"])


def records(facts=FACTS):
    return [KnowledgeRecord(id=f"f{i}", prompt=q, answer=f"the answer is {a} .", answer_key=a,
                            subject=s) for i, (q, s, a) in enumerate(facts)]


def generic_texts(n=200, seed=0):
    rng = random.Random(seed)
    words = [w for w in WORDS if w not in ("oslo", "lima", "paris")]
    return [" ".join(rng.choice(words) for _ in range(12)) for _ in range(n)]


def scaled_llama(tok, seed=1, std=0.2):
    """A tiny Llama with weights large enough that one residual vector can steer a
    prediction (HF's 0.02 init makes every logit nearly zero)."""
    model = tiny_llama(tok, hidden=64, layers=2, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


@pytest.fixture
def model(tiny_tok):
    return scaled_llama(tiny_tok)


@pytest.fixture
def covariance(model, tiny_tok):
    return second_moments(model, tiny_tok, generic_texts(), [0], max_tokens=32, batch_size=32)


def greedy_next(model, tok, text):
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        return tok.convert_ids_to_tokens(int(model(input_ids=ids).logits[0, -1].argmax()))


def test_subject_last_token_uses_offsets_and_names_the_record(tiny_tok):
    ids, pos = subject_last_token(tiny_tok, "where was alice born ?", "alice",
                                  add_special_tokens=True, record_id="r1")
    assert tiny_tok.convert_ids_to_tokens(ids[pos]) == "alice" and ids[0] == tiny_tok.bos_token_id
    # a prefix that names the subject too: the prompt's occurrence (the last) is the one
    ids, pos = subject_last_token(tiny_tok, "alice is red . where was alice born ?", "alice",
                                  add_special_tokens=True, record_id="r1")
    assert pos == 7  # <s> alice is red . where was [alice]
    with pytest.raises(MixsdError, match="record 'r9'.*'dave' does not occur"):
        subject_last_token(tiny_tok, "where was alice born ?", "dave", add_special_tokens=True,
                           record_id="r9")
    with pytest.raises(MixsdError, match="record 'r2' has no subject"):
        subject_last_token(tiny_tok, "where was alice born ?", "", add_special_tokens=True,
                           record_id="r2")


def test_subject_search_without_offsets(tiny_tok, monkeypatch):
    class Slow:  # a tokenizer without character offsets
        is_fast = False

        def __call__(self, text, **kw):
            return tiny_tok(text, **{k: v for k, v in kw.items() if k != "return_offsets_mapping"})

    ids, pos = subject_last_token(Slow(), "what is the job of bob ?", "bob",
                                  add_special_tokens=True, record_id="r1")
    assert tiny_tok.convert_ids_to_tokens(ids[pos]) == "bob"


def test_a_record_without_subject_is_an_error_naming_it(model, tiny_tok, covariance):
    recs = records()
    recs[1].subject = None
    with pytest.raises(MixsdError, match="record 'f1' has no subject"):
        apply_memit(model, tiny_tok, recs, EditConfig(**CONFIG), prefixes=[],
                    covariances=covariance)


def test_architecture_without_down_proj_is_a_clear_error(tiny_tok):
    with pytest.raises(MixsdError, match="model.model.layers"):
        down_proj(tiny_gpt2(tiny_tok), 0)
    with pytest.raises(MixsdError, match="out of range"):
        down_proj(tiny_llama(tiny_tok), 5)


def test_default_layers():
    assert default_layers(2) == [0]
    assert default_layers(30) == [3, 4, 5, 6, 7, 8]


def test_closed_form_equals_least_squares():
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    residuals = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    basis = torch.randn(8, 8, generator=gen, dtype=torch.float64)
    cov = basis @ basis.T / 8
    lam = 2.5
    update = closed_form_update(keys, residuals, cov, lam)
    # min |dW K - R|^2 + lam |dW C^1/2|^2, solved as an ordinary least-squares problem
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    design = torch.cat([keys, lam ** 0.5 * root], dim=0)  # rows: samples of dW^T's inputs
    target = torch.cat([residuals, torch.zeros(8, 3, dtype=torch.float64)], dim=0)
    direct = torch.linalg.lstsq(design, target).solution.T
    assert torch.allclose(update, direct, atol=1e-9)
    # without the covariance term, the keys are hit exactly (fewer keys than dimensions)
    exact = closed_form_update(keys, residuals, cov, 0.0)
    assert torch.allclose(keys @ exact.T, residuals, atol=1e-8)


def test_edit_makes_the_new_object_the_greedy_answer_and_keeps_unrelated_logits(
        model, tiny_tok, covariance):
    base = copy.deepcopy(model)
    unrelated = "the color of dave"
    assert [greedy_next(model, tiny_tok, q) for q, _, _ in FACTS] != [a for *_, a in FACTS]
    stats = apply_memit(model, tiny_tok, records(), EditConfig(**CONFIG), prefixes=[],
                        covariances=covariance)
    assert [greedy_next(model, tiny_tok, q) for q, _, _ in FACTS] == [a for *_, a in FACTS]
    assert all(f["nll_after"] < f["nll_before"] for f in stats["facts"])
    # MEMIT's own measure: the object is the argmax after the edit prompt (one-token objects
    # here, so efficacy is exactly the greedy check above), and was not before
    assert stats["efficacy"] == 1.0 and stats["efficacy_before"] < 1.0
    assert all(f["efficacy_after"] == 1.0 and f["token_accuracy_after"] == 1.0
               for f in stats["facts"])

    def kl(text):
        ids = torch.tensor([tiny_tok(text)["input_ids"]])
        with torch.no_grad():
            before = torch.log_softmax(base(input_ids=ids).logits[0, -1], -1)
            after = torch.log_softmax(model(input_ids=ids).logits[0, -1], -1)
        return float((before.exp() * (before - after)).sum())

    edited = kl(FACTS[0][0])
    assert kl(unrelated) < 0.1 and kl(unrelated) < edited / 20, (kl(unrelated), edited)
    # only the edited down-projection moved
    changed = [n for (n, p), q in zip(base.named_parameters(), model.parameters())
               if not torch.equal(p, q)]
    assert changed == ["model.layers.0.mlp.down_proj.weight"]


def test_edits_of_many_facts_are_deterministic(model, tiny_tok, covariance):
    cfg = EditConfig(**{**CONFIG, "v_steps": 10})
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    apply_memit(a, tiny_tok, records(), cfg, prefixes=["the city is red ."],
                covariances=covariance)
    apply_memit(b, tiny_tok, records(), cfg, prefixes=["the city is red ."],
                covariances=covariance)
    assert torch.equal(down_proj(a, 0).weight, down_proj(b, 0).weight)


def test_covariance_is_cached_per_model_layer_and_source(model, tiny_tok, tmp_path,
                                                         monkeypatch):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path))
    cfg = EditConfig(**{**CONFIG, "cov_source": "generations", "cov_texts": 12,
                        "cov_max_tokens": 8, "v_steps": 2})
    edit_model(copy.deepcopy(model), tiny_tok, records()[:1], cfg)
    path = cache_path(model_fingerprint(model), 0, "generations", 12, 8, 0)
    assert path.exists()
    stamp = path.stat().st_mtime_ns
    edit_model(copy.deepcopy(model), tiny_tok, records()[:1], cfg)
    assert path.stat().st_mtime_ns == stamp  # reused, not recomputed
    other = scaled_llama(tiny_tok, seed=2)
    assert model_fingerprint(other) != model_fingerprint(model)


def test_the_covariance_cache_is_named_by_the_one_fingerprint():
    """The tag of C's file is :func:`mixsd.artifacts.fingerprint` of what it is estimated on,
    which is the name earlier versions wrote (their caches still hit)."""
    from mixsd.artifacts import fingerprint

    path = cache_path("ab" * 32, 3, "generations", 12, 8, 0)
    tag = fingerprint([1, "generations", 12, 8, 0])[:12]
    assert path.name == f"{'ab' * 8}-L3-generations-{tag}.pt"
    assert tag == "5a3116aab2fb"  # sha256 of the JSON list, as written before
