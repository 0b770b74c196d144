import dataclasses
import json

import pytest

from mixsd.models import load_model_and_tokenizer
from mixsd.toyworld import cache
from mixsd.toyworld.pretrain import ModelConfig, PretrainConfig, lr_at
from mixsd.toyworld.world import WorldConfig

TINY_MODEL = ModelConfig(hidden=16, layers=1, heads=2, ffn=32, max_positions=64)
TINY_TRAIN = PretrainConfig(steps=3, batch_size=2, block_size=32, warmup=1)


def _build(path, train=TINY_TRAIN):
    return cache.build_toy_model(path, WorldConfig(), TINY_MODEL, train, progress=False,
                                 measure=False)


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != cache.MANIFEST}


def test_reduced_build_is_loadable_and_byte_identical(tmp_path):
    m1 = _build(tmp_path / "a")
    _build(tmp_path / "b")
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert {"model.safetensors", "tokenizer.json", "config.json"} <= set(_files(tmp_path / "a"))
    assert m1["config_hash"] == cache.config_hash(WorldConfig(), TINY_MODEL, TINY_TRAIN)
    assert json.loads((tmp_path / "a" / cache.MANIFEST).read_text())["parameters"] > 0
    model, tok = load_model_and_tokenizer(str(tmp_path / "a"), device="cpu")
    assert not model.config.tie_word_embeddings and model.config.vocab_size == len(tok)
    assert not list(tmp_path.glob(".*tmp*"))  # the temporary build folder is gone


def test_embeddings_start_large_and_untied():
    from mixsd.toyworld.pretrain import build_model
    from mixsd.toyworld.tokenizer import build_tokenizer
    from mixsd.toyworld.world import World

    tok = build_tokenizer(World().vocabulary())
    config = ModelConfig(embed_std=0.5, head_std=0.2)
    model = build_model(len(tok), tok, config, seed=0)
    emb = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    assert emb.data_ptr() != head.data_ptr()
    assert emb.std().item() == pytest.approx(0.5, rel=0.05)
    assert head.std().item() == pytest.approx(0.2, rel=0.05)
    again = build_model(len(tok), tok, config, seed=0)
    assert (again.get_input_embeddings().weight == emb).all()
    tied = build_model(len(tok), tok, ModelConfig(tie_embeddings=True, embed_std=0.5), seed=0)
    assert tied.get_input_embeddings().weight.data_ptr() == \
        tied.get_output_embeddings().weight.data_ptr()


def test_thread_count_and_seed(tmp_path):
    _build(tmp_path / "a")
    _build(tmp_path / "one", dataclasses.replace(TINY_TRAIN, threads=1))
    _build(tmp_path / "s1", dataclasses.replace(TINY_TRAIN, seed=1))
    a = _files(tmp_path / "a")["model.safetensors"]
    assert a == _files(tmp_path / "one")["model.safetensors"]
    assert a != _files(tmp_path / "s1")["model.safetensors"]


def test_config_hash_and_lr_schedule():
    base = cache.config_hash(WorldConfig(), ModelConfig(), PretrainConfig())
    assert base == cache.config_hash(WorldConfig(), ModelConfig(), PretrainConfig())
    assert base != cache.config_hash(WorldConfig(seed=1), ModelConfig(), PretrainConfig())
    assert base != cache.config_hash(WorldConfig(), ModelConfig(), PretrainConfig(steps=3))
    assert base != cache.config_hash(WorldConfig(), ModelConfig(embed_std=1.0), PretrainConfig())
    # the thread count does not change the bytes (test_thread_count_and_seed), nor the hash
    assert base == cache.config_hash(WorldConfig(), ModelConfig(), PretrainConfig(threads=1))
    cfg = PretrainConfig(steps=1000, warmup=100, lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-5) and lr_at(99, cfg) == pytest.approx(1e-3)
    assert lr_at(999, cfg) == pytest.approx(1e-4, rel=1e-3)


def test_ensure_builds_on_first_use_when_nothing_matches(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path))
    monkeypatch.setattr(cache, "toy_configs", lambda: (WorldConfig(), TINY_MODEL, TINY_TRAIN))
    monkeypatch.setattr(cache, "measure_toy_model", lambda *a, **k: {"recall": 0.0})
    folder = cache.ensure_toy_model(progress=False)
    digest = cache.config_hash(WorldConfig(), TINY_MODEL, TINY_TRAIN)
    assert folder == tmp_path / f"toy-{digest}"
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert cache.ensure_toy_model(progress=False) == folder  # cached: not rebuilt
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
