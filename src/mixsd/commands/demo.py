"""Run `mixsd compare` on the embedded toy world model: every method, 3 seeds, one report.

The toy model (a small Llama pretrained on a synthetic world, shipped with mixsd) gets 100
new facts injected by SFT (two learning rates), offline self-distillation (lambda = 0, with
the own-words guidance), MixSD at lambda 0.3, 0.5 (two learning rates) and 0.7, MixSD 0.5
with the own-words guidance, and OPSD at its calibrated learning rate; every run trains until
its memorisation stops rising (2 epochs without a new best) or reaches 95%, at most 16
epochs, with memorisation and retention measured after every epoch. The settings are the
shipped preset mixsd/presets/demo.yaml (--preset rounds: the continual-injection run of
docs/rounds). The console shows one progress bar; logs go to OUT/log.txt. Accepts every
`mixsd compare` flag (flags override the preset).

Example:
  mixsd demo
  mixsd demo --out runs/demo-2 --seeds 0,1,2,3,4
  mixsd demo --preset rounds
"""

from __future__ import annotations

import argparse
from importlib import resources
from typing import Any

import yaml

from mixsd.commands.compare import summarize
from mixsd.compare import CompareConfig, run_compare
from mixsd.errors import ConfigError

PRESETS = ("demo", "rounds")


def preset(name: str = "demo") -> dict[str, Any]:
    """The values of a shipped preset (``mixsd/presets/NAME.yaml``)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)} "
                          "(flag --preset)")
    text = resources.files("mixsd").joinpath("presets", f"{name}.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="demo", choices=PRESETS,
                        help="shipped preset: demo (the comparison) or rounds (continual "
                        "injection) (default: demo)")
    CompareConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> str:
    return summarize(run_compare(CompareConfig.from_args(args, defaults=preset(args.preset))))
