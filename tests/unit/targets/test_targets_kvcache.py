"""PreallocatedLayer behaves like DynamicLayer (values, growth past capacity, row selection)."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from mixsd.targets.kvcache import PreallocatedLayer


def _pair(b=3, n=2):
    return torch.randn(b, 2, n, 4), torch.randn(b, 2, n, 4)


def test_matches_dynamic_layer_including_growth_and_selection():
    keys, values = _pair(n=5)
    plain = DynamicLayer()
    plain.update(keys, values)
    fast = PreallocatedLayer(keys, values, capacity=7)
    rows = 3
    for step in range(6):  # runs past the capacity of 7 positions
        k, v = _pair(b=rows, n=1)
        a, b = plain.update(k, v), fast.update(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
        assert plain.get_seq_length() == fast.get_seq_length() == 6 + step
        if step == 2:
            idx = torch.tensor([2, 0])
            plain.batch_select_indices(idx)
            fast.batch_select_indices(idx)
            rows = 2
    assert fast.keys.shape == (2, 2, 11, 4)
    fast.crop(-3)
    assert fast.get_seq_length() == 8 and torch.equal(fast.keys, plain.keys[..., :8, :])
