"""Build or inspect the embedded toy world base model.

`mixsd toy build` makes the default toy model available in $MIXSD_HOME (default
~/.cache/mixsd): it installs the checkpoint shipped with mixsd when its config hash matches,
else pretrains it on CPU (minutes). --force always pretrains; --out DIR builds into DIR
instead of the cache (this is how the shipped checkpoint is regenerated).
`mixsd toy info` prints the model's scores on the held-out suites (recall, paraphrase,
in_context, arithmetic; 200 items each), build seconds, parameter count and path; the scores
come from the build's manifest, or are measured again with --measure.

Example:
  mixsd toy build
  mixsd toy build --force --out src/mixsd/toyworld/checkpoint
  mixsd toy build --force --threads 1
  mixsd toy info --json
  mixsd toy info --measure --n-items 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError

INFO_KEYS = ("recall", "paraphrase", "in_context", "arithmetic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.toyworld.config import ToyConfig

    ToyConfig.add_arguments(parser)
    parser.add_argument("--json", action="store_true", help="info: print JSON")


def _build(config: Any) -> str:
    from mixsd.toyworld.cache import build_toy_model, default_configs, ensure_toy_model

    start = time.perf_counter()
    if config.out:
        manifest = build_toy_model(Path(config.out), *default_configs(config.threads),
                                   n_items=config.n_items)
        path = Path(config.out)
    else:
        path = ensure_toy_model(force=config.force, threads=config.threads)
        from mixsd.toyworld.cache import read_manifest

        manifest = read_manifest(path) or {}
    seconds = time.perf_counter() - start
    scores = manifest.get("scores", {})
    score_text = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return (f"toy model: {path}\nseconds: {seconds:.1f} (pretraining build_seconds "
            f"{manifest.get('build_seconds')})\nscores: {score_text or 'not measured'}")


def _info(config: Any, as_json: bool) -> str:
    from mixsd.toyworld.cache import ensure_toy_model, measure_toy_model, read_manifest

    path = Path(config.model) if config.model else ensure_toy_model()
    manifest = read_manifest(path)
    if manifest is None:
        raise MixsdError(f"{path} has no manifest.json: not a toy model folder")
    if config.measure or "scores" not in manifest:
        scores = measure_toy_model(path, config.n_items)
        n_items = config.n_items
    else:
        scores, n_items = manifest["scores"], manifest.get("scores_n_items")
    info = {k: scores.get(k) for k in INFO_KEYS}
    info.update(build_seconds=manifest.get("build_seconds"),
                parameters=manifest.get("parameters"), path=str(path), n_items=n_items,
                tokens_per_s=manifest.get("tokens_per_s"))
    if as_json:
        return json.dumps(info)
    return "\n".join(f"{k}: {v}" for k, v in info.items())


def run(args: argparse.Namespace) -> str:
    from mixsd.toyworld.config import ToyConfig

    config = ToyConfig.from_args(args)
    if config.action == "build":
        return _build(config)
    return _info(config, args.json)
