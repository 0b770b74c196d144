"""Teach a model new facts under a forgetting budget, in one command.

Give it a model and a file of facts; it returns a model that knows them and still does what
it did. Probes (the model's registered suites, else the shipped general and instruct, plus
--probe SUITE) are scored on the base model's KNOWN set, and --retain R (default 0.95) is the
budget: every probe keeps at least R of the base model's score. Targets are MixSD's best rule
on real models (λ 0.5, word rule, λ fallback 0.3, 0.15, 0, entity check); facts whose
targets never verify are listed, not silently dropped. Every epoch is evaluated; a try stops
when memorisation stops rising or a probe falls below the budget, and ships the most memorised
epoch within it. A try that memorises nothing within the budget is followed by one at half
the learning rate (--tries, default 3); if none succeeds, the best model found is written
and the summary says so.

OUT gets model/ (a plain Hugging Face folder, LoRA merged unless --adapter-only, with its
model card README.md), report.md (per-epoch plot, facts not learned), inject.json, and the
stage folders (base.json, targets/, tries/try-K/). Re-running the same command resumes.
--dry-run prints the plan and an estimate of the minutes, and writes nothing.

Example:
  mixsd inject --model toy --data toy --n-facts 100 --retain 0.9 --out runs/inject-toy
  mixsd inject --model smollm2 --data data/kgfact --n-facts 32 --retain 0.95 --dry-run
  mixsd inject --model Qwen/Qwen3-1.7B --data facts.jsonl --probe math:gsm8k.jsonl \\
      --lora --out runs/qwen-facts
"""

from __future__ import annotations

import argparse
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mixsd.injection import InjectConfig

    InjectConfig.add_arguments(parser)


def plan_text(plan: dict[str, Any]) -> str:
    t, m = plan["targets"], plan["minutes"]
    facts = plan["facts"]
    fallback = ", ".join(f"{x:g}" for x in t["lambda_fallback"]) or "none"
    lines = [
        "plan (dry run: nothing is trained or written)",
        f"model: {plan['model']}",
        f"facts: {facts['facts']} from {facts['source']} ({facts['records']} records scored, "
        f"{facts['paraphrases']} paraphrases)"
        + (f", sha256 {facts['sha256'][:16]}..., {facts['bytes']} bytes"
           if facts.get("sha256") else ""),
        f"probes (known set of the base model; budget: each keeps >= "
        f"{100 * plan['retain']:g}% of its base score): "
        + ", ".join(f"{k} ({v} items)" for k, v in plan["probes"].items()),
        f"targets: mixsd λ {t['mix_lambda']:g} ({t['mix_unit']} rule), fallback λ {fallback}; "
        f"verified by the answer key{' and the entity check' if t['verify_entities'] else ''}, "
        f"up to {t['max_retries'] + 1} attempts per λ",
        f"training: {'LoRA' if plan['lora'] else 'full fine-tuning'}, at most "
        f"{plan['epochs']} epochs a try, stops when memorisation has not risen for "
        f"{plan['patience']} epochs, reaches 100% or a probe falls below the budget; up to "
        f"{plan['tries']} tries at lr " + ", ".join(f"{x:g}" for x in plan["lrs"]),
        f"timed: a forward pass of a training batch {plan['forward_s']:.4f} s, a generated "
        f"token of an evaluation batch {plan['token_s']:.4f} s",
        f"estimate: base model {m['base']:.1f} min, targets {m['targets']:.1f} min, an epoch "
        f"(training and evaluation) {m['epoch']:.1f} min; the first try at most "
        f"{m['first_try']:.1f} min, every try at most {m['all_tries']:.1f} min",
    ]
    return "\n".join(lines)


def summary_text(summary: dict[str, Any]) -> str:
    from mixsd.report.inject import kept_table

    c = summary["config"]
    sel = summary["selected"]
    base = summary["base"]
    head = "already complete: " if summary.get("already_complete") else ""
    facts = summary["facts"]["facts"]
    learned = (f"memorisation {100 * (summary['memorization'] or 0):.1f}% of {facts} facts "
               f"(base {100 * (base['memorization'] or 0):.1f}%)")
    if summary.get("paraphrase") is not None:
        learned += f", paraphrase recall {100 * summary['paraphrase']:.1f}%"
    if summary["budget_met"]:
        verdict = (f"{head}budget met (every probe >= {100 * c['retain']:g}% of the base): "
                   f"{learned}; try {sel['try']} lr {sel['lr']:g}, epoch {sel['epoch']}")
    else:
        verdict = (f"{head}budget NOT met: no epoch of {len(summary['tries'])} tries kept "
                   f"every probe at >= {100 * c['retain']:g}% of the base while memorising "
                   f"more than it; wrote the best model found (try {sel['try']} lr "
                   f"{sel['lr']:g}, epoch {sel['epoch']}: {learned}); a lower --retain"
                   f"{'' if c['lora'] else ' or --lora'} may meet it")
    out = c["out"]
    return "\n".join([verdict, "", kept_table(summary).to_text(), "",
                      f"model:  {out}/model (card: {out}/model/README.md)",
                      f"report: {out}/report.md",
                      f"{len(summary['not_learned'])} facts not learned, "
                      f"{len(summary['unverified'])} unverified (listed in the report)"])


def run(args: argparse.Namespace) -> str:
    from mixsd.injection import InjectConfig, inject

    config = InjectConfig.from_args(args)
    result = inject(config)
    return plan_text(result) if result.get("dry_run") else summary_text(result)
