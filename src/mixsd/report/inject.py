"""What ``mixsd inject`` shows a user, from its ``inject.json`` (never typed by hand):

* :func:`model_card`: ``OUT/model/README.md``, the card shipped with the model (base model,
  the facts file's hash and size, memorisation and paraphrase recall, retention per probe
  against the budget, the cost, how to load and how to check it);
* :func:`write_inject_report`: ``OUT/report.md`` with ``epochs.png`` (the per-epoch curve of
  every try, the budget drawn), every try's epochs, the facts not learned and those whose
  targets never verified;
* :func:`inject_section`: the README section of a published injection (``mixsd report
  docs/inject --out docs/inject --readme README.md --section inject``), with the
  independent ``mixsd eval`` of the model beside what the card states when
  ``FOLDER/eval/scores.json`` is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mixsd.io import atomic_write_text, read_json_or_empty
from mixsd.report.tables import DASH, Table, fmt

SUMMARY = "inject.json"
EVAL_SCORES = Path("eval") / "scores.json"


def is_injection(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``mixsd inject`` (it holds inject.json)."""
    return (Path(path) / SUMMARY).is_file()


def _pct(value: Any, scale: float = 100.0) -> str:
    return DASH if value is None else f"{fmt(value, scale=scale)}%"


def _minutes(seconds: Any) -> str:
    return DASH if seconds is None else f"{float(seconds) / 60:.1f} min"


def learned_table(summary: dict[str, Any]) -> Table:
    base = summary["base"]
    table = Table("What it learned", ["measure", "base model", "this model"])
    table.rows.append(["memorisation of the facts (greedy answers to the training questions)",
                       _pct(base.get("memorization")), _pct(summary.get("memorization"))])
    if summary.get("paraphrase") is not None or base.get("paraphrase") is not None:
        table.rows.append(["paraphrase recall (the facts asked in other words)",
                           _pct(base.get("paraphrase")), _pct(summary.get("paraphrase"))])
    return table


def kept_table(summary: dict[str, Any]) -> Table:
    budget = 100.0 * summary["retain"]
    table = Table("What it kept", ["probe", "known items (of all)", "base score",
                                   "retained (% of base)", f"within budget (>= {budget:g}%)"],
                  note="Each probe is scored on the base model's known set (the items it "
                  "answers right); retained = score now / the base model's score.")
    for name, probe in summary["probes"].items():
        retained = probe.get("retained")
        ok = retained is not None and retained >= budget - 1e-9 * max(1.0, budget)
        known = DASH if probe.get("known") is None else f"{probe['known']} ({probe['items']})"
        table.rows.append([name, known, _pct(probe.get("base")), _pct(retained, 1.0),
                           "yes" if ok else "NO"])
    return table


def _verdict(summary: dict[str, Any]) -> str:
    sel = summary["selected"]
    where = f"try {sel['try']} (lr {sel['lr']:g}), epoch {sel['epoch']}"
    if summary["budget_met"]:
        return (f"Budget met: every probe keeps at least {100 * summary['retain']:g}% of the "
                f"base model's score; the model is {where}, the most memorised epoch within "
                "the budget.")
    return (f"**Budget NOT met**: no epoch of {len(summary['tries'])} tries kept every probe "
            f"at {100 * summary['retain']:g}% of the base model while memorising more than "
            f"it; this is the best model found ({where}: the epoch closest to the budget, "
            "the most memorised of those equally close).")


def provenance_lines(summary: dict[str, Any]) -> list[str]:
    facts, targets, cost, c = (summary["facts"], summary["targets"], summary["cost"],
                               summary["config"])
    sel = summary["selected"]
    size = f"{facts['bytes']} bytes, sha256 `{facts['sha256']}`" if facts.get("sha256") else ""
    training = "LoRA" + ("" if c.get("adapter_only") else " (merged)") if c.get("lora") \
        else "full fine-tuning"
    lines = [
        f"- base model: `{summary['model']}` ({summary['model_path']})",
        f"- facts: `{facts.get('file') or facts['source']}` ({size}); {facts['facts']} facts "
        f"taught, {facts['records']} records scored",
        f"- targets: {targets['rule']}; {targets.get('verified')} of {targets.get('records')} "
        f"verified, {targets.get('unverified')} unverified (not trained on, listed in "
        "report.md)",
        f"- training: {training}, lr {sel['lr']:g} (try {sel['try']} of at most "
        f"{c['tries']}), epoch {sel['epoch']}, batch {c['batch_size']}, seed {c['seed']}",
        f"- cost: {_minutes(cost.get('wall_s'))} wall (this invocation), targets "
        f"{_minutes(cost.get('targets_s'))}, training {_minutes(cost.get('train_s'))}, "
        f"evaluation {_minutes(cost.get('eval_s'))}, on {cost.get('device')}"
        + (f"; the model is {cost['model_bytes'] / 2**20:.1f} MiB"
           if cost.get("model_bytes") else ""),
        f"- made by mixsd {summary['versions'].get('mixsd', '?')} (transformers "
        f"{summary['versions'].get('transformers', '?')}, torch "
        f"{summary['versions'].get('torch', '?')})",
    ]
    return lines


def model_card(summary: dict[str, Any]) -> str:
    """The model card ``OUT/model/README.md``."""
    folder = Path(summary["config"]["out"]) / "model"
    load = ("from peft import AutoPeftModelForCausalLM\n"
            f"model = AutoPeftModelForCausalLM.from_pretrained(\"{folder}\")"
            if summary["config"].get("adapter_only") else
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
            f"model = AutoModelForCausalLM.from_pretrained(\"{folder}\")\n"
            f"tokenizer = AutoTokenizer.from_pretrained(\"{folder}\")")
    facts = summary["facts"]
    parts = ["---", "library_name: transformers", "tags: [mixsd, knowledge-injection]", "---",
             "", f"# `{summary['model']}` taught {facts['facts']} facts with mixsd", "",
             "Made by `mixsd inject` (MixSD targets: the model's own answers mixed with the "
             "reference shown in context; training stopped and selected under a forgetting "
             "budget). It loads with plain `transformers`, no mixsd needed:", "",
             "```python", load, "```", "", _verdict(summary), "",
             learned_table(summary).to_markdown(), kept_table(summary).to_markdown(),
             f"{len(summary['not_learned'])} of {facts['facts']} facts are not answered right "
             "and the targets of "
             f"{len(summary['unverified'])} never verified; both lists are in `report.md`.", "",
             "## Provenance", "", *provenance_lines(summary), "", "## Check it", "",
             "An independent evaluation of this folder measures the same numbers:", "",
             "```bash", summary["eval_command"], "```", ""]
    return "\n".join(parts)


def epochs_table(summary: dict[str, Any], attempt: dict[str, Any]) -> Table:
    probes = list(summary["probes"])
    table = Table(f"Try {attempt['try']}: lr {attempt['lr']:g}",
                  ["epoch", "memorisation %", "paraphrase %",
                   *[f"{p} (% of base)" for p in probes], "within budget", "train loss"],
                  note=f"Stopped: {attempt['stopped']}. Selected epoch {attempt['selected_epoch']}"
                  + (" (within the budget)." if attempt["met"] else " (no epoch met the "
                     "budget: the closest)."))
    for row in attempt["epochs"]:
        table.rows.append([str(row["epoch"]), fmt(row.get("memorization"), scale=100),
                           fmt(row.get("paraphrase"), scale=100),
                           *[fmt(row.get(f"retained/{p}")) for p in probes],
                           "yes" if row.get("within_budget") else "no",
                           fmt(row.get("train_loss"), digits=3)])
    return table


def facts_table(title: str, rows: list[dict[str, Any]], answer: str, note: str = "") -> Table:
    table = Table(title, ["id", "question", "answer key", answer], note=note)
    for r in rows:
        table.rows.append([str(r.get("id")), str(r.get("prompt")), str(r.get("answer_key")),
                           " ".join(str(r.get("generation") or r.get("target") or "").split())])
    return table


def write_inject_report(summary: dict[str, Any], out: str | Path) -> Path:
    """``OUT/report.md`` and ``OUT/epochs.png``; returns the report's path."""
    from mixsd.report.plots import inject_plot

    out = Path(out)
    plot = inject_plot(summary, out / "epochs.png")
    parts = [f"# mixsd inject: `{summary['model']}`, {summary['facts']['facts']} facts, "
             f"budget {100 * summary['retain']:g}%", "", _verdict(summary), "",
             f"![memorisation and retention per epoch]({plot.name})", "",
             learned_table(summary).to_markdown(), kept_table(summary).to_markdown()]
    parts += [epochs_table(summary, t).to_markdown() for t in summary["tries"]]
    if summary.get("dropped_probes"):
        parts += ["Probes without a budget: " + "; ".join(
            f"{k}: {v}" for k, v in summary["dropped_probes"].items()) + ".", ""]
    parts.append(facts_table(
        f"Facts not learned ({len(summary['not_learned'])})", summary["not_learned"],
        "answer given", "The selected epoch's greedy answers that do not carry the key."
    ).to_markdown())
    parts.append(facts_table(
        f"Facts whose targets never verified ({len(summary['unverified'])})",
        summary["unverified"], "last target", "Kept out of training: no target at any λ "
        "of the fallback carried the answer key and the record's names.").to_markdown())
    parts += ["## Provenance", "", *provenance_lines(summary), ""]
    return atomic_write_text(out / "report.md", "\n".join(parts))


def confirmation_table(summary: dict[str, Any], scores: dict[str, Any]) -> Table:
    """The card's numbers beside an independent ``mixsd eval`` of the model."""
    table = Table("Confirmed by an independent `mixsd eval` of the model",
                  ["measure", "the card", "mixsd eval"])
    found = scores.get("scores") or {}

    def by_kind(kind: str) -> Any:
        return next((v for k, v in found.items() if k.startswith(f"{kind}:")), None)

    table.rows.append(["memorisation %", fmt(summary.get("memorization"), scale=100),
                       fmt(by_kind("records"), scale=100)])
    if summary.get("paraphrase") is not None:
        table.rows.append(["paraphrase %", fmt(summary.get("paraphrase"), scale=100),
                           fmt(by_kind("paraphrase"), scale=100)])
    retention = scores.get("retention") or {}
    for name, probe in summary["probes"].items():
        table.rows.append([f"{name} (% of base)", fmt(probe.get("retained")),
                           fmt(retention.get(name))])
    return table


# Fields that decide nothing a reader of the result needs to repeat it.
_NOT_SHOWN = ("out", "quiet", "device", "dry_run", "eval_batch_size")


def inject_command(config: dict[str, Any]) -> str:
    """The ``mixsd inject`` command of a recorded config: the values that differ from the
    defaults, as flags (the model, the facts and the budget always)."""
    from mixsd.injection_config import InjectConfig

    shown_always = ("model", "data", "retain")
    defaults = InjectConfig(model="-", data="-", out="-").to_dict()  # the flat record
    # a stage's dotted key (train.weight_decay) is recorded only where it differs
    defaults.update({k: object() for k in config if "." in k and k not in defaults})
    parts = ["mixsd inject"]
    for key, default in defaults.items():
        if key in _NOT_SHOWN or key not in config:
            continue
        value = config[key]
        if value == default and key not in shown_always:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else f"--no-{key.replace('_', '-')}")
        else:
            shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) \
                if isinstance(value, list) else (f"{value:g}" if isinstance(value, float)
                                                 else str(value))
            parts.append(f"{flag} {shown}")
    return " ".join(parts)


def inject_section(folder: str | Path, command: str, readme_dir: Path) -> list[str]:
    """The Markdown lines of a README section made from an injection's folder (links
    relative to ``readme_dir``)."""
    import os

    folder = Path(folder)
    report = os.path.relpath(folder / "report.md", readme_dir)
    summary = read_json_or_empty(folder / SUMMARY)
    c = summary["config"]
    lines = [f"Generated by `{command}` from `{folder}` (`{inject_command(c)}`).", "",
             _verdict(summary), ""]
    plot = folder / "epochs.png"
    if plot.exists():
        lines += [f"![memorisation and retention per epoch]"
                  f"({os.path.relpath(plot, readme_dir)})", ""]
    lines += [learned_table(summary).to_markdown(), kept_table(summary).to_markdown()]
    scores = read_json_or_empty(folder / EVAL_SCORES)
    if scores:
        lines.append(confirmation_table(summary, scores).to_markdown())
    lines += [f"{len(summary['not_learned'])} facts not learned, "
              f"{len(summary['unverified'])} unverified (listed in [`{report}`]({report})).",
              "",
              *provenance_lines(summary), ""]
    return lines
