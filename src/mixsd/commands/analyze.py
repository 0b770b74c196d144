"""Why it works (docs/method.md): two analyses against the BASE model.

  nll     mean per-token NLL of each targets file under the base model given the naive prompt
          (exactly the training tokens). Compare y* (an SFT targets file, or a records file),
          lambda=0 and MixSD targets. Writes a histogram with --out; --json prints
          {file: mean NLL per token}.
  fisher  diagonal empirical Fisher of the base model on a held-out suite's questions and
          reference answers (mean of squared per-example gradients of the answer's NLL), and
          sum_i F_i (theta_i - theta0_i)^2 for each checkpoint, in total and per layer.
          A checkpoint is a model folder, a LoRA adapter folder (merged into the base), or a
          run folder (its epoch-N/ checkpoints).
  rules   every mixing rule (--units: token = the paper, word, span) x --lambdas on the same
          records: verified %, generations per verified target, naive-token fraction, target
          NLL under the base model, share of targets that differ from y* and from the pure-expert
          target, and the share the entity check / round trip would also accept. --out STEM
          writes STEM.md and STEM.json.

Example:
  mixsd analyze nll --model toy --targets sft sd0 mixsd-0.3 --guidance toy \\
      --out analysis --json
  mixsd analyze fisher --model toy --checkpoints runs/sft/epoch-2 runs/mixsd-0.3 \\
      --suite toy:in_context --max-examples 128 --json
  mixsd analyze rules --model smollm2 --data data/kgfact/train.jsonl --n-records 50 \\
      --max-new-tokens 48 --out docs/rules/smollm2
"""

from __future__ import annotations

import argparse
import json
from typing import Any

EXAMPLES = {
    "nll": "mixsd analyze nll --model toy --targets sft sd0 mixsd-0.3 "
           "--guidance toy --json",
    "fisher": "mixsd analyze fisher --model toy --checkpoints runs/sft/epoch-2 runs/mixsd-0.3 "
              "--suite toy:in_context --max-examples 128",
    "rules": "mixsd analyze rules --model toy --guidance toy --data toy.jsonl "
             "--max-new-tokens 32 --out docs/rules/toy\n"
             "  mixsd analyze rules --model smollm2 --data data/kgfact/train.jsonl "
             "--n-records 50 --lambdas 0.5 --out docs/rules/smollm2   # resumable",
}


def _parser(sub, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with an example."""
    return sub.add_parser(name, help=help, description=help,
                          epilog=f"Example:\n  {EXAMPLES[name]}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.analysis.config import FisherConfig, NLLConfig

    sub = parser.add_subparsers(dest="analysis", required=True, metavar="{nll,fisher,rules}")
    nll = _parser(sub, "nll", "mean per-token NLL of targets under the base model")
    nll.add_argument("--json", action="store_true", help="print the result as JSON")
    NLLConfig.add_arguments(nll)
    fisher = _parser(sub, "fisher", "Fisher-weighted displacement of checkpoints")
    fisher.add_argument("--json", action="store_true", help="print the result as JSON")
    FisherConfig.add_arguments(fisher)
    _add_rules(sub)


RULES_SKIP = ("method", "mix_lambda", "mix_unit", "verify_entities", "verify_round_trip",
              "overwrite")


def _add_rules(sub) -> None:
    from mixsd.analysis.config import RulesConfig
    from mixsd.targets.config import TargetsConfig

    rules = _parser(sub, "rules", "targets of every mixing rule x lambda, one table")
    rules.add_argument("--json", action="store_true", help="print the table as JSON")
    RulesConfig.add_arguments(rules)
    TargetsConfig.add_arguments(rules, skip=RULES_SKIP)


def rules_configs(args: argparse.Namespace) -> tuple[Any, Any]:
    """The (RulesConfig, TargetsConfig) of `analyze rules`: one --config file holds the keys
    of both; each takes its own."""
    from mixsd.analysis.config import RulesConfig
    from mixsd.config import StageConfig
    from mixsd.targets.config import TargetsConfig

    data = StageConfig.load_yaml(args.config) if getattr(args, "config", None) else {}
    own = {f: data.pop(f) for f in list(data) if f in RulesConfig.__dataclass_fields__}
    flags = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "config"})
    return (RulesConfig.from_args(flags, defaults=own),
            TargetsConfig.from_args(flags, defaults=data))


def _nll_text(summary: dict) -> str:
    lines = [f"mean NLL per token under {summary['model']}:"]
    for name, d in summary["details"].items():
        lines.append(f"  {d['mean_nll']:8.4f}  {name}  ({d['n_targets']} targets, "
                     f"{d['n_tokens']} tokens)")
    if summary.get("histogram"):
        lines.append(f"histogram: {summary['histogram']}")
    return "\n".join(lines)


def _fisher_text(summary: dict) -> str:
    lines = [f"Fisher of {summary['model']} on {', '.join(summary['suites'])} "
             f"({summary['n_examples']} examples); sum_i F_i (theta_i - theta0_i)^2:"]
    for path, d in summary["fisher"].items():
        layers = ", ".join(f"{k} {v:.3g}" for k, v in d["per_layer"].items())
        lines.append(f"  {d['total']:.4g}  {path}\n      {layers}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    from mixsd.analysis.config import FisherConfig, NLLConfig
    from mixsd.analysis.run import analyze_fisher, analyze_nll

    if args.analysis == "rules":
        return _run_rules(args)
    if args.analysis == "nll":
        nll = NLLConfig.from_args(args)
        summary = analyze_nll(nll.model, nll.targets, guidance=nll.guidance,
                              batch_size=nll.batch_size, out=nll.out, device=nll.device,
                              include_unverified=nll.include_unverified)
        return json.dumps(summary["nll"], indent=2) if args.json else _nll_text(summary)
    fisher = FisherConfig.from_args(args)
    summary = analyze_fisher(fisher.model, fisher.checkpoints, fisher.suite,
                             max_examples=fisher.max_examples, out=fisher.out,
                             device=fisher.device, guidance=fisher.guidance)
    return json.dumps(summary["fisher"], indent=2) if args.json else _fisher_text(summary)


def _run_rules(args: argparse.Namespace) -> str:
    from mixsd.analysis.rules import run_rules

    rules, config = rules_configs(args)
    table, text = run_rules(config, rules.data, lambdas=rules.lambdas, units=rules.units,
                            n_records=rules.n_records, out=rules.out)
    return json.dumps(table, indent=2) if args.json else text
