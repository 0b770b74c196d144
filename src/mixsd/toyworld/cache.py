"""The toy model cache: ``$MIXSD_HOME/toy-<hash>/`` built on first use, or copied from the
checkpoint shipped in the package when its config hash matches.

The hash (:func:`mixsd.artifacts.fingerprint`, cut to 12 characters) covers the world, model
and pretraining configs, so changing any of them names a new folder; a folder is used only
when its manifest records that very hash (:func:`manifest_matches`). Builds are atomic: the model is written into a temporary folder beside the target and
renamed into place, so a killed build leaves no half-written model behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from mixsd.artifacts import fingerprint
from mixsd.io import atomic_write_json, mixsd_home
from mixsd.toyworld.pretrain import ModelConfig, PretrainConfig, pretrain
from mixsd.toyworld.world import WorldConfig

SHIPPED = Path(__file__).parent / "checkpoint"
MANIFEST = "manifest.json"
FORMAT_VERSION = 2  # bumped when the world's generator code changes


def toy_configs() -> tuple[WorldConfig, ModelConfig, PretrainConfig]:
    """The configs of the default toy model (the one ``toy`` resolves to)."""
    return WorldConfig(), ModelConfig(), PretrainConfig()


def default_configs(threads: int | None = None) -> tuple[WorldConfig, ModelConfig, PretrainConfig]:
    """:func:`toy_configs`, with the pretraining thread count overridden when given (the thread
    count changes neither the bytes nor the hash)."""
    world, model, train = toy_configs()
    if threads is not None:
        train = dataclasses.replace(train, threads=threads)
    return world, model, train


def config_hash(world: WorldConfig, model: ModelConfig, train: PretrainConfig) -> str:
    """A short, stable hash of everything that shapes the model's bytes.

    The thread count is left out: 1 and 2 threads give the same bytes (a test checks it).
    """
    train_dict = {k: v for k, v in train.to_dict().items() if k != "threads"}
    return fingerprint({"format": FORMAT_VERSION, "world": world.to_dict(),
                        "model": model.to_dict(), "train": train_dict})[:12]


def read_manifest(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def manifest_matches(folder: str | Path, digest: str) -> bool:
    """Whether ``folder`` holds a toy model built from the configs of ``digest`` (its
    manifest records that config hash)."""
    found = read_manifest(folder)
    return bool(found) and found.get("config_hash") == digest


def measure_toy_model(folder: str | Path, n_items: int = 200, seed: int = 0,
                      world: WorldConfig | None = None) -> dict[str, float]:
    """Scores of the model in ``folder`` on every toy suite (``n_items`` held-out items each)."""
    from mixsd.models import load_model_and_tokenizer
    from mixsd.toyworld.suites import get_world, toy_suites

    model, tokenizer = load_model_and_tokenizer(str(folder), device="cpu", dtype="float32")
    suites = toy_suites(n_items, seed, world=get_world(world))
    return {name: round(s.evaluate(model, tokenizer, batch_size=64).score, 4)
            for name, s in suites.items()}


def build_toy_model(out_dir: str | Path, world: WorldConfig, model: ModelConfig,
                    train: PretrainConfig, *, progress: bool = True, measure: bool = True,
                    n_items: int = 200) -> dict[str, Any]:
    """Pretrain into a temporary folder, measure, write the manifest, rename to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    start = time.perf_counter()
    try:
        stats = pretrain(tmp, world, model, train, progress=progress)
        manifest = write_manifest(tmp, world, model, train, stats,
                                  build_seconds=time.perf_counter() - start,
                                  n_items=n_items if measure else 0)
        _replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def write_manifest(folder: Path, world: WorldConfig, model: ModelConfig, train: PretrainConfig,
                   stats: dict[str, Any], *, build_seconds: float,
                   n_items: int = 200) -> dict[str, Any]:
    """Write ``manifest.json`` (config hash, configs, build stats, scores when ``n_items``)."""
    manifest = {"config_hash": config_hash(world, model, train), "world": world.to_dict(),
                "model": model.to_dict(), "train": train.to_dict(), **stats,
                "build_seconds": round(build_seconds, 1)}
    if n_items:
        manifest["scores"] = measure_toy_model(folder, n_items, world=world)
        manifest["scores_n_items"] = n_items
    atomic_write_json(Path(folder) / MANIFEST, manifest)
    return manifest


def _replace(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst`` (an existing ``dst`` is moved aside first, then removed)."""
    old = dst.parent / f".{dst.name}.old-{os.getpid()}"
    if dst.exists():
        os.replace(dst, old)
    try:
        os.replace(src, dst)
    except OSError:
        if not dst.exists():  # lost a race with nothing to show for it: surface the error
            raise
    shutil.rmtree(old, ignore_errors=True)


def _install_shipped(dst: Path) -> None:
    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(SHIPPED, tmp)
    try:
        _replace(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def ensure_toy_model(*, force: bool = False, progress: bool = True,
                     threads: int | None = None) -> Path:
    """The folder of the default toy model, loadable by AutoModelForCausalLM/AutoTokenizer.

    Uses the cached build when present; else installs the shipped checkpoint when its config
    hash matches; else pretrains it (minutes on CPU). ``force`` always pretrains;
    ``threads`` overrides the pretraining thread count (the bytes do not depend on it).
    """
    world, model, train = default_configs(threads)
    digest = config_hash(world, model, train)
    folder = mixsd_home() / f"toy-{digest}"
    if not force:
        if manifest_matches(folder, digest):
            return folder
        if manifest_matches(SHIPPED, digest):
            _install_shipped(folder)
            return folder
    build_toy_model(folder, world, model, train, progress=progress)
    return folder
