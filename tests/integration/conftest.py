"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest

from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny Llama saved to disk, loadable by path like a hub model (one per test module; a
    module that needs another model defines its own)."""
    tok = tiny_tokenizer()
    return save_tiny(tmp_path_factory.mktemp("tiny") / "llama", tiny_llama(tok), tok)
