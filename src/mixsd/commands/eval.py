"""Score a model on memorisation and retention suites (greedy answers, verified against their
answer keys; multiple choice by log-likelihood; any lm-eval task on the in-memory model).

Suites (comma-separated --suite): toy (every toy world probe), toy:NAME, math:FILE.jsonl
(\\boxed{} answers), mcq:FILE.jsonl (question/choices/answer), lmeval:TASK (with
--lmeval-include DIR for local task YAMLs), records:FILE.jsonl[@SPLIT] (memorisation of a
corpus' training questions, or another split such as 2hop), paraphrase:FILE.jsonl.
With --base-model, each score is also shown as % of the base model's (cached).

Example:
  mixsd eval --model toy --suite toy --json
  mixsd eval --model runs/sft/epoch-2 --base-model toy \\
      --suite toy,records:corpus.jsonl,paraphrase:corpus.jsonl --guidance toy
  mixsd eval --model Qwen/Qwen2.5-0.5B-Instruct --suite math:math500.jsonl,mcq:mmlu.jsonl \\
      --out eval-out
  mixsd eval --model Qwen/Qwen3-8B --suite lmeval:gsm8k,lmeval:humaneval \\
      --lmeval-chat-template --lmeval-gen-kwargs max_gen_toks=1024 --lmeval-unsafe-code \\
      --out eval-q8      # Qwen3 thinking off unless --chat-template-kwargs enable_thinking=true
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.evaluation.config import EvalConfig

    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    EvalConfig.add_arguments(parser)


def format_summary(summary: dict) -> str:
    base = summary.get("base") or {}
    retention = summary.get("retention") or {}
    width = max(len(k) for k in summary["scores"]) + 2
    head = f"{'suite':<{width}}{'n':>6}{'score %':>10}"
    lines = [f"model: {summary['model']}", head + ("   base %  retained %" if base else "")]
    for name, score in summary["scores"].items():
        line = f"{name:<{width}}{summary['n'][name]:>6}{100 * score:>10.1f}"
        if base:
            kept = retention.get(name)
            line += f"{100 * base[name]:>9.1f}{'–' if kept is None else f'{kept:.1f}':>12}"
        lines.append(line)
    if summary.get("retention_mean") is not None:
        lines.append(f"retention mean: {summary['retention_mean']:.1f}% of the base model")
    lines.append(f"wall_s: {summary['wall_s']:.1f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    from mixsd.evaluation.config import EvalConfig
    from mixsd.evaluation.run import run_eval

    summary = run_eval(EvalConfig.from_args(args))
    if args.json:
        return json.dumps({k: v for k, v in summary.items() if k != "wall_s"}, indent=2)
    return format_summary(summary)
