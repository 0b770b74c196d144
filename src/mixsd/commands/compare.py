"""Run every method on one corpus with identical evaluation, and write one report.

Stages: targets -> training with per-epoch evaluation -> first-peak selection and
equal-memorisation comparison -> target NLL and Fisher displacement -> results.json ->
report. Every stage's artifact under --out is reused, so re-running resumes a killed run;
a comparison made with other values is refused unless --overwrite (the old one is kept whole
in .OUT.replaced until the new one completes). One process writes --out at a time.

Methods: sft (NLL on y*), sd0 (lambda = 0, offline self-distillation), mixsd:LAMBDA, opsd
(on-policy self-distillation), memit (locate-and-edit: one MEMIT edit of the base model, one
evaluation, no epochs or learning rate; --edit-config FILE.yaml sets its `mixsd edit`
options); METHOD@GUIDANCE gives a method its own expert guidance; --method-lr METHOD=LR gives
a method its own learning rates. Seeds: --seeds drives training order, LoRA initialisation,
OPSD rollouts and (unless --targets-seed fixes it) the targets' coins, one targets file per
seed; the toy corpus's facts come from --corpus-seed (0: the same facts for every seed).
The equal-memorisation comparison takes each run at its first epoch with memorisation at or
above --equal-memorization (default 0.8); runs that never get there are listed as such.
--rounds N injects the facts in N rounds, one after another (continual injection). The
console shows one progress bar; logs go to OUT/log.txt (--no-quiet: everything on the
console).

Example:
  mixsd compare --model toy --corpus toy --methods sft,sd0,mixsd:0.3,mixsd:0.5,opsd \\
      --epochs 4 --lr 1e-3 --seeds 0,1 --out runs/toy-compare
  mixsd compare --model toy --corpus toy --methods sft,mixsd:0.5,memit --epochs 6 --lr 1e-3 \
      --max-new-tokens 32 --out runs/memit-toy
  mixsd compare --model toy --corpus toy --methods sft,mixsd:0.5,opsd --lr 1e-3,3e-3 \\
      --method-lr opsd=3e-3 --seeds 0,1,2 --epochs 16 --stop-patience 2 --out runs/seeds
  mixsd compare --model toy --corpus toy --n-facts 60 --rounds 3 --methods sft,mixsd:0.5 \\
      --epochs 12 --lr 1e-3 --batch-size 4 --out runs/rounds
  mixsd compare --model Qwen/Qwen3-1.7B --corpus kgfact-small/ --suites math:gsm8k.jsonl \\
      --methods sft,mixsd:0.3 --lr 1e-5,3e-5 --lora --out runs/qwen
  mixsd compare --model Qwen/Qwen3-8B --corpus kgfact-small/ --methods sft,mixsd:0.3,opsd \\
      --lora --lora-r 16 --lr 1e-4 --suites general,lmeval:gsm8k --lmeval-chat-template \\
      --gradient-checkpointing --fisher-examples 0 --out runs/qwen3-8b  # docs/scale.md
"""

from __future__ import annotations

import argparse
from typing import Any

from mixsd.compare import CompareConfig, run_compare
from mixsd.report.tables import results_text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    CompareConfig.add_arguments(parser)


def summarize(summary: dict[str, Any]) -> str:
    lines = [results_text(summary["results"]), "",
             f"results: {summary['results_path']}"]
    if summary.get("report_path"):
        lines.append(f"report:  {summary['report_path']}")
    lines.append(f"wall: {summary['wall_s']:.0f} s")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    return summarize(run_compare(CompareConfig.from_args(args)))
