"""Run `mixsd compare` on the embedded toy world model: every method, one report.

The toy model (a small Llama pretrained on a synthetic world, shipped with mixsd) gets 100
new facts injected by SFT, offline self-distillation (lambda = 0), MixSD at lambda 0.3, 0.5
and 0.7, and OPSD; memorisation and retention of its capabilities are measured after every
epoch. Takes a few minutes on a laptop CPU. Accepts every `mixsd compare` flag.

Example:
  mixsd demo
  mixsd demo --out runs/demo-2 --seeds 0,1 --lr 3e-4,1e-3
"""

from __future__ import annotations

import argparse

from mixsd.commands.compare import summarize
from mixsd.experiment import DEMO_DEFAULTS, CompareConfig, run_compare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    CompareConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> str:
    return summarize(run_compare(CompareConfig.from_args(args, defaults=DEMO_DEFAULTS)))
