import copy

import pytest
import torch

from mixsd.evaluation.drift import drift_kl
from mixsd.evaluation.retention import (
    BaseScoreCache,
    base_scores,
    fingerprint_weights,
    retained,
    retention_mean,
    retention_table,
)


def test_retained_percentages_and_zero_base_guard():
    assert retained(0.3, 0.6) == pytest.approx(50.0)
    assert retained(0.9, 0.6) == pytest.approx(150.0)
    assert retained(0.5, 0.0) is None
    assert retained(None, 0.5) is None
    table = retention_table({"a": 0.25, "b": 0.1, "c": 1.0}, {"a": 0.5, "b": 0.0, "d": 1.0})
    assert table == {"a": 50.0, "b": None}
    assert retention_mean(table) == 50.0
    assert retention_mean({"x": None}) is None
    assert retention_mean({"x": 80.0, "y": 100.0}) == 90.0


class CountingSuite:
    def __init__(self, name, score):
        self.name, self.score, self.calls = name, score, 0

    def fingerprint(self):
        return f"{self.name}-v1"

    def evaluate(self, model, tokenizer, batch_size=32):
        self.calls += 1
        return type("R", (), {"score": self.score})()


def test_base_scores_are_computed_once_and_cached(tmp_path, tiny_tok, tiny_model):
    suite = CountingSuite("s", 0.75)
    first = base_scores(tiny_model, tiny_tok, {"s": suite}, cache_dir=tmp_path)
    again = base_scores(tiny_model, tiny_tok, {"s": suite}, cache_dir=tmp_path)
    assert first == again == {"s": 0.75}
    assert suite.calls == 1
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert fingerprint_weights(other) != fingerprint_weights(tiny_model)
    base_scores(other, tiny_tok, {"s": suite}, cache_dir=tmp_path)
    assert suite.calls == 2  # another model is another cache key
    assert BaseScoreCache(tmp_path).get(fingerprint_weights(tiny_model), suite) == 0.75


def test_drift_of_identical_models_is_zero(tiny_tok, tiny_model):
    prompts = ["alice is born in paris", "what is 2 + 3 ?"]
    assert drift_kl(tiny_model, copy.deepcopy(tiny_model), tiny_tok, prompts) == pytest.approx(
        0.0, abs=1e-6)


def test_drift_matches_a_brute_force_kl(tiny_tok, tiny_model):
    other = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    prompts = ["alice is born in paris", "bob"]
    total, count = 0.0, 0
    for text in prompts:
        ids = torch.tensor([tiny_tok(text)["input_ids"]])
        with torch.no_grad():
            p = torch.softmax(tiny_model(ids).logits[0], -1)
            q = torch.softmax(other(ids).logits[0], -1)
        for t in range(ids.shape[1]):
            total += float(sum(p[t, v] * (p[t, v].log() - q[t, v].log())
                               for v in range(p.shape[-1])))
            count += 1
    got = drift_kl(tiny_model, other, tiny_tok, prompts, batch_size=2)
    assert got > 0
    assert got == pytest.approx(total / count, rel=1e-4)
