"""One padding rule (mixsd.generation.pad_token_id): pad token, else EOS, else 0."""

from __future__ import annotations

from types import SimpleNamespace

from mixsd.generation import pad_token_id


def test_the_pad_token_then_eos_then_zero():
    assert pad_token_id(SimpleNamespace(pad_token_id=3, eos_token_id=2)) == 3
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=2)) == 2
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0
    assert pad_token_id(SimpleNamespace(pad_token_id=0)) == 0
