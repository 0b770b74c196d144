"""Write facts into a model with MEMIT (locate-and-edit knowledge editing), no training.

Every record's fact is written at once into the MLP down-projections of --layers: keys are
the down-projection's inputs at the subject's last token of the naive prompt, target values
are optimised so the model emits the new object (--target: answer_key, MEMIT's object, or
the whole reference answer), and the update is the closed form
dW = R K^T (cov_weight * C + K K^T)^-1, C the key covariance over generic text (cached in
$MIXSD_HOME/memit-cov/). Records need a `subject`. Writes the edited model, edit.json (per
fact target NLL before / after) and run.json to --out.

Example:
  mixsd edit --model toy --data data/facts.jsonl --out runs/edited
  mixsd edit --model runs/base --data facts.jsonl --out runs/edited --layers 3,4,5,6 \\
      --cov-weight 1000 --n-prefixes 5
  mixsd eval --model runs/edited --base-model toy --suite toy --json
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.editing.config import EditConfig

    EditConfig.add_arguments(parser)


def run(args: argparse.Namespace) -> str:
    from mixsd.editing import EditConfig, run_edit

    summary = run_edit(EditConfig.from_args(args))
    return (f"edited {summary['n_records']} facts into layers "
            f"{','.join(map(str, summary['layers']))}: mean target NLL "
            f"{summary['mean_nll_before']:.3f} -> {summary['mean_nll_after']:.3f}\n"
            f"model: {summary['out']}\nwall: {summary['wall_s']:.0f} s")
