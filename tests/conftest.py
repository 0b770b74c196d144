"""Shared fixtures: tiny in-process models (no downloads) and an isolated MIXSD_HOME."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def tiny_tok():
    from mixsd.testing import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture
def tiny_chat_tok():
    from mixsd.testing import tiny_tokenizer

    return tiny_tokenizer(chat=True)


@pytest.fixture
def tiny_model(tiny_tok):
    from mixsd.testing import tiny_llama

    return tiny_llama(tiny_tok)


@pytest.fixture
def write_jsonl(tmp_path):
    """Write raw lines (str) or objects (json-dumped) to a file and return its path."""
    import json

    def _write(rows, name="data.jsonl"):
        path = tmp_path / name
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return _write


@pytest.fixture
def registries():
    """mixsd's registries (plug-ins loaded); what a test registers is undone after it."""
    from mixsd.registry import isolated

    with isolated() as found:
        yield found
