"""Fixtures of the training tests: a tiny saved base model and hand-written target files."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def write_rows(tmp_path):
    def _write(rows, name="targets.jsonl"):
        path = tmp_path / name
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def base_dir(tmp_path, tiny_tok, tiny_model):
    """A tiny llama saved to disk (loadable by path, like a hub model)."""
    from mixsd.testing import save_tiny

    return save_tiny(tmp_path / "base", tiny_model, tiny_tok)


@pytest.fixture
def make_config(tmp_path, base_dir):
    from mixsd.training import TrainConfig

    def _make(**kw):
        values = dict(model=base_dir, out=str(tmp_path / "run"), epochs=1, lr=1e-3,
                      batch_size=2, device="cpu", warmup_ratio=0.0)
        values.update(kw)
        return TrainConfig(**values)

    return _make
