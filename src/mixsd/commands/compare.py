"""Run every method on one corpus with identical evaluation, and write one report.

Stages: targets -> training with per-epoch evaluation -> first-peak selection and
equal-memorisation comparison -> target NLL and Fisher displacement -> results.json ->
report. Every stage's artifact under --out is reused, so re-running resumes a killed run.

Methods: sft (NLL on y*), sd0 (lambda = 0, offline self-distillation), mixsd:LAMBDA, opsd
(on-policy self-distillation), memit (locate-and-edit: one MEMIT edit of the base model, one
evaluation, no epochs or learning rate; --edit-config FILE.yaml sets its `mixsd edit`
options); METHOD@GUIDANCE gives a method its own expert guidance.

Example:
  mixsd compare --model toy --corpus toy --methods sft,sd0,mixsd:0.3,mixsd:0.5,opsd \\
      --epochs 4 --lr 1e-3 --seeds 0,1 --out runs/toy-compare
  mixsd compare --model toy --corpus toy --methods sft,mixsd:0.5,memit --epochs 6 --lr 1e-3 \
      --max-new-tokens 32 --out runs/memit-toy
  mixsd compare --model Qwen/Qwen3-1.7B --corpus kgfact-small/ --suites math:gsm8k.jsonl \\
      --methods sft,mixsd:0.3 --lr 1e-5,3e-5 --lora --out runs/qwen
"""

from __future__ import annotations

import argparse
from typing import Any

from mixsd.experiment import CompareConfig, results_table, run_compare


def add_arguments(parser: argparse.ArgumentParser) -> None:
    CompareConfig.add_arguments(parser)


def summarize(summary: dict[str, Any]) -> str:
    lines = [results_table(summary["results"]), "",
             f"results: {summary['results_path']}"]
    if summary.get("report_path"):
        lines.append(f"report:  {summary['report_path']}")
    lines.append(f"wall: {summary['wall_s']:.0f} s")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    return summarize(run_compare(CompareConfig.from_args(args)))
