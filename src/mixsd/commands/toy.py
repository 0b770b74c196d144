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

from mixsd.errors import MixsdError

HELP = "build or inspect the embedded toy world base model"
INFO_KEYS = ("recall", "paraphrase", "in_context", "arithmetic")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "info"), help="build or info")
    parser.add_argument("--force", action="store_true",
                        help="build: pretrain even when a cached or shipped model exists")
    parser.add_argument("--out", default=None,
                        help="build: write the model into this folder instead of the cache")
    parser.add_argument("--threads", type=int, default=None,
                        help="build: CPU threads for pretraining (default 2; the bytes do not "
                        "depend on it, 1 is faster when the machine is busy)")
    parser.add_argument("--json", action="store_true", help="info: print JSON")
    parser.add_argument("--measure", action="store_true",
                        help="info: measure the scores now instead of reading the manifest")
    parser.add_argument("--n-items", type=int, default=200,
                        help="held-out items per suite when scores are measured (default 200)")
    parser.add_argument("--model", default=None,
                        help="info: a toy model folder (default: the cached toy model)")


def _build(args: argparse.Namespace) -> str:
    from mixsd.toyworld.cache import build_toy_model, default_configs, ensure_toy_model

    if args.n_items < 1:
        raise MixsdError(f"--n-items must be at least 1, got {args.n_items}")
    if args.threads is not None and args.threads < 1:
        raise MixsdError(f"--threads must be at least 1, got {args.threads}")
    start = time.perf_counter()
    if args.out:
        manifest = build_toy_model(Path(args.out), *default_configs(args.threads),
                                   n_items=args.n_items)
        path = Path(args.out)
    else:
        path = ensure_toy_model(force=args.force, threads=args.threads)
        from mixsd.toyworld.cache import read_manifest

        manifest = read_manifest(path) or {}
    seconds = time.perf_counter() - start
    scores = manifest.get("scores", {})
    score_text = ", ".join(f"{k} {v:.3f}" for k, v in scores.items())
    return (f"toy model: {path}\nseconds: {seconds:.1f} (pretraining build_seconds "
            f"{manifest.get('build_seconds')})\nscores: {score_text or 'not measured'}")


def _info(args: argparse.Namespace) -> str:
    from mixsd.toyworld.cache import ensure_toy_model, measure_toy_model, read_manifest

    if args.n_items < 1:
        raise MixsdError(f"--n-items must be at least 1, got {args.n_items}")
    path = Path(args.model) if args.model else ensure_toy_model()
    manifest = read_manifest(path)
    if manifest is None:
        raise MixsdError(f"{path} has no manifest.json: not a toy model folder")
    if args.measure or "scores" not in manifest:
        scores = measure_toy_model(path, args.n_items)
        n_items = args.n_items
    else:
        scores, n_items = manifest["scores"], manifest.get("scores_n_items")
    info = {k: scores.get(k) for k in INFO_KEYS}
    info.update(build_seconds=manifest.get("build_seconds"),
                parameters=manifest.get("parameters"), path=str(path), n_items=n_items,
                tokens_per_s=manifest.get("tokens_per_s"))
    if args.json:
        return json.dumps(info)
    return "\n".join(f"{k}: {v}" for k, v in info.items())


def run(args: argparse.Namespace) -> str:
    if args.action == "build":
        return _build(args)
    return _info(args)
