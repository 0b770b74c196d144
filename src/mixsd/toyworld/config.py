"""The config of `mixsd toy build` and `mixsd toy info` (the embedded toy world model)."""

from __future__ import annotations

from dataclasses import dataclass

from mixsd.config import StageConfig, option

ACTIONS = ("build", "info")


@dataclass
class ToyConfig(StageConfig):
    """Build the toy model into the cache (or ``out``), or describe one."""

    stage = "toy"

    action: str = option("info", "build or info", choices=ACTIONS, positional=True)
    force: bool = option(False, "build: pretrain even when a cached or shipped model exists")
    out: str | None = option(None, "build: write the model into this folder instead of the "
                             "cache", metavar="DIR")
    threads: int | None = option(None, "build: CPU threads for pretraining (default 2; the "
                                 "bytes do not depend on it, 1 is faster when the machine is "
                                 "busy)", min=1)
    measure: bool = option(False, "info: measure the scores now instead of reading the "
                           "manifest")
    n_items: int = option(200, "held-out items per suite when scores are measured", min=1)
    model: str | None = option(None, "info: a toy model folder (default: the cached toy model)")
