"""Why it works (method.md): two analyses against the BASE model.

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
  mixsd analyze nll --model toy --targets sft.jsonl sd0.jsonl mixsd-0.3.jsonl --guidance toy \\
      --out analysis --json
  mixsd analyze fisher --model toy --checkpoints runs/sft/epoch-2 runs/mixsd-0.3 \\
      --suite toy:in_context --max-examples 128 --json
  mixsd analyze rules --model smollm2 --data data/kgfact/train.jsonl --n-records 50 \\
      --max-new-tokens 48 --out docs/rules/smollm2
"""

from __future__ import annotations

import argparse
import json

HELP = "target NLL under the base model; Fisher-weighted displacement; mixing-rule table"


EXAMPLES = {
    "nll": "mixsd analyze nll --model toy --targets sft.jsonl sd0.jsonl mixsd-0.3.jsonl "
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


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the BASE model: id, local folder, or 'toy'")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--out", metavar="DIR", default=None, help="folder for the JSON (and plots)")
    p.add_argument("--device", default="auto", help="device: auto, cpu, cuda, ...")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="analysis", required=True, metavar="{nll,fisher,rules}")
    nll = _parser(sub, "nll", "mean per-token NLL of targets under the base model")
    _common(nll)
    nll.add_argument("--targets", nargs="+", required=True, metavar="FILE",
                     help="targets JSONL files (or records files: their answers are scored)")
    nll.add_argument("--guidance", default="knowledge",
                     help="preset whose naive prompt layout training used (knowledge, toy, ...)")
    nll.add_argument("--batch-size", type=int, default=8, help="sequences per forward pass")
    nll.add_argument("--include-unverified", action="store_true",
                     help="also score targets that failed verification (training skips them)")
    fisher = _parser(sub, "fisher", "Fisher-weighted displacement of checkpoints")
    _common(fisher)
    fisher.add_argument("--checkpoints", nargs="+", required=True, metavar="DIR",
                        help="checkpoint folders, LoRA adapters, or run folders with epoch-N/")
    fisher.add_argument("--suite", required=True,
                        help="held-out suite(s) with reference answers: toy:NAME, "
                        "records:F.jsonl, math:F.jsonl, mcq:F.jsonl (comma-separated)")
    fisher.add_argument("--max-examples", type=int, default=256,
                        help="first N held-out examples used for the Fisher")
    fisher.add_argument("--guidance", default="knowledge",
                        help="prompt layout of records suites (knowledge, toy, ...)")

    _add_rules(sub)


RULES_SKIP = ("method", "mix_lambda", "mix_unit", "verify_entities", "verify_round_trip",
              "overwrite")


def _add_rules(sub) -> None:
    from mixsd.targets.config import TargetsConfig

    rules = _parser(sub, "rules", "targets of every mixing rule x lambda, one table")
    rules.add_argument("--data", required=True, metavar="FILE", help="knowledge records")
    rules.add_argument("--out", metavar="STEM", default=None,
                       help="write STEM.md and STEM.json")
    rules.add_argument("--lambdas", default="0.3,0.5,0.7", help="lambdas (comma-separated)")
    rules.add_argument("--units", default="token,word,span", help="mixing units (comma-separated)")
    rules.add_argument("--n-records", type=int, default=None,
                       help="the first N records only (default: all)")
    rules.add_argument("--json", action="store_true", help="print the table as JSON")
    TargetsConfig.add_arguments(rules, skip=RULES_SKIP)


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
    from mixsd.analysis.runner import analyze_fisher, analyze_nll
    from mixsd.errors import ConfigError

    if args.analysis == "rules":
        return _run_rules(args)
    if args.analysis == "nll":
        if args.batch_size < 1:
            raise ConfigError("batch_size must be >= 1 (flag --batch-size)")
        summary = analyze_nll(args.model, args.targets, guidance=args.guidance,
                              batch_size=args.batch_size, out=args.out, device=args.device,
                              include_unverified=args.include_unverified)
        return json.dumps(summary["nll"], indent=2) if args.json else _nll_text(summary)
    if args.max_examples < 1:
        raise ConfigError("max_examples must be >= 1 (flag --max-examples)")
    summary = analyze_fisher(args.model, args.checkpoints, args.suite,
                             max_examples=args.max_examples, out=args.out, device=args.device,
                             guidance=args.guidance)
    return json.dumps(summary["fisher"], indent=2) if args.json else _fisher_text(summary)


def _run_rules(args: argparse.Namespace) -> str:
    from mixsd.analysis.rules import run_rules
    from mixsd.config import _coerce
    from mixsd.errors import ConfigError
    from mixsd.targets.config import TargetsConfig
    from mixsd.targets.words import MIX_UNITS

    config = TargetsConfig.from_args(args)
    lambdas = _coerce(args.lambdas, list[float], "lambdas", "--lambdas")
    units = _coerce(args.units, list[str], "units", "--units")
    for lam in lambdas:
        if not 0.0 <= lam <= 1.0:
            raise ConfigError(f"lambdas must be in [0, 1], got {lam:g} (flag --lambdas)")
    for unit in units:
        if unit not in MIX_UNITS:
            raise ConfigError(f"units must be among {', '.join(MIX_UNITS)}, got {unit!r} "
                              "(flag --units)")
    if args.n_records is not None and args.n_records < 1:
        raise ConfigError("n_records must be >= 1 (flag --n-records)")
    table, text = run_rules(config, args.data, lambdas=lambdas, units=units,
                            n_records=args.n_records, out=args.out)
    return json.dumps(table, indent=2) if args.json else text
