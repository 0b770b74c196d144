"""Per-record draws and the token-selection rule."""

from __future__ import annotations

import hashlib
import json

import torch

from mixsd.targets.sampling import record_draws, record_seed, select_tokens


def test_record_seed_is_a_stable_sha256_of_seed_id_attempt():
    digest = hashlib.sha256(json.dumps([0, "a", 1]).encode()).digest()
    assert record_seed(0, "a", 1) == int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
    assert (
        len(
            {
                record_seed(0, "a", 1),
                record_seed(1, "a", 1),
                record_seed(0, "b", 1),
                record_seed(0, "a", 2),
            }
        )
        == 4
    )


def test_record_draws_are_reproducible_and_in_unit_interval():
    a = record_draws(3, "x", 1, 50)
    assert a.shape == (50, 2)
    assert torch.equal(a, record_draws(3, "x", 1, 50))
    assert not torch.equal(a, record_draws(3, "x", 2, 50))
    assert float(a.min()) >= 0.0 and float(a.max()) < 1.0
    torch.manual_seed(123)  # the global RNG plays no part
    assert torch.equal(a, record_draws(3, "x", 1, 50))


def test_greedy_is_argmax():
    logits = torch.tensor([[0.1, 3.0, 2.0], [5.0, -1.0, 4.9]])
    assert select_tokens(logits, torch.tensor([0.9, 0.1]), 0.0, 64).tolist() == [1, 0]


def test_inverse_cdf_over_sorted_top_k():
    # probabilities 0.5, 0.3, 0.2 at tokens 2, 0, 1 (softmax of log-probs, T = 1)
    logits = torch.log(torch.tensor([[0.3, 0.2, 0.5]]))
    pick = [
        int(select_tokens(logits, torch.tensor([u]), 1.0, 64)[0])
        for u in (0.0, 0.49, 0.51, 0.79, 0.81, 0.999)
    ]
    assert pick == [2, 2, 0, 0, 1, 1]


def test_top_k_excludes_the_tail_and_temperature_sharpens():
    logits = torch.log(torch.tensor([[0.3, 0.2, 0.5]]))
    # k = 2 renormalises over {2: 0.5/0.8, 0: 0.3/0.8}; u close to 1 never reaches token 1
    assert int(select_tokens(logits, torch.tensor([0.9999]), 1.0, 2)[0]) == 0
    assert int(select_tokens(logits, torch.tensor([0.6]), 1.0, 2)[0]) == 2
    # a low temperature puts almost all mass on the argmax
    assert int(select_tokens(logits, torch.tensor([0.99]), 0.05, 64)[0]) == 2


def test_sampling_frequencies_follow_softmax():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).repeat(20000, 1)
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(select_tokens(logits, u, 1.0, 64), minlength=4).float() / 20000
    expected = torch.softmax(logits[0], -1)
    assert torch.allclose(counts, expected, atol=0.015)
