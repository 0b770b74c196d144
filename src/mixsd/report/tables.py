"""Tables of a report, built once from results.json and rendered as Markdown or HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mixsd.evaluation.results import (
    best_entry,
    first_at_level,
    group_runs,
    mean_spread,
    retention_at_equal_memorization,
    run_lambda,
    run_name,
)

DASH = "–"


@dataclass
class Table:
    """A titled table of already formatted cells."""

    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def to_markdown(self) -> str:
        esc = [[c.replace("|", "\\|") for c in row] for row in [self.header, *self.rows]]
        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(esc[0]) + " |")
        lines.append("|" + "|".join("---" for _ in self.header) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
        return "\n".join(lines) + "\n"

    def to_text(self) -> str:
        """Plain aligned columns for a terminal (title if any, header, rule, rows)."""
        rows = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
        title = [self.title] if self.title else []
        return "\n".join([*title, lines[0], "-" * len(lines[0]), *lines[1:]])

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                       for row in self.rows)
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return (f"<h3>{html.escape(self.title)}</h3>{note}<table><thead><tr>{head}</tr></thead>"
                f"<tbody>{body}</tbody></table>")


def fmt(value: Any, digits: int = 1, scale: float = 1.0) -> str:
    """Format a number (None -> a dash); large or tiny values in scientific notation."""
    if value is None:
        return DASH
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value) * scale
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** -digits):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    return str(value)


def label(run: dict[str, Any]) -> str:
    """The run's display name (with its source when several results files are combined)."""
    name = run.get("name") or run_name(run["method"], run_lambda(run), run.get("lr"),
                                       run.get("seed"))
    return f"{run['_source']}/{name}" if run.get("_source") else name


def suite_names(results: Sequence[dict[str, Any]]) -> list[str]:
    names: dict[str, None] = {}
    for res in results:
        names.update(dict.fromkeys(res["base"].get("scores", {})))
        for run in res["runs"]:
            names.update(dict.fromkeys(run.get("retention", {})))
    return list(names)


def base_table(results: Sequence[dict[str, Any]], sources: Sequence[str]) -> Table:
    suites = suite_names(results)
    table = Table("Base model (untouched)", ["source", "memorisation %", "paraphrase %",
                                             *[f"{s} %" for s in suites]])
    for src, res in zip(sources, results):
        base = res["base"]
        scores = base.get("scores", {})
        table.rows.append([src, fmt(base.get("memorization"), scale=100),
                           fmt(base.get("paraphrase"), scale=100),
                           *[fmt(scores.get(s), scale=100) for s in suites]])
    return table


def runs_table(runs: Sequence[dict[str, Any]], suites: Sequence[str]) -> Table:
    header = ["run", "method", "λ", "lr", "seed", "epoch", "memorisation %", "paraphrase %",
              *[f"{s} (% of base)" for s in suites], "retention mean %", "drift KL",
              "target NLL", "Fisher displ.", "seconds"]
    table = Table("Runs at their selected epoch (first peak of memorisation)", header,
                  note="Retention = score after / score of the base model, in percent.")
    for run in runs:
        fisher = (run.get("fisher") or {}).get("total")
        retention = run.get("retention", {})
        table.rows.append([label(run), run["method"], fmt(run_lambda(run), 2),
                           f"{run['lr']:g}" if run.get("lr") is not None else DASH,
                           fmt(run.get("seed"), 0), fmt(run.get("selected_epoch"), 0),
                           fmt(run.get("memorization"), scale=100),
                           fmt(run.get("paraphrase"), scale=100),
                           *[fmt(retention.get(s)) for s in suites],
                           fmt(run.get("retention_mean")), fmt(run.get("drift_kl"), 4),
                           fmt(run.get("target_nll"), 3), fmt(fisher, 4),
                           fmt(run.get("seconds"), 0)])
    return table


def equal_memorization_table(runs: Sequence[dict[str, Any]],
                             level: float | None = None) -> Table | None:
    """Each run's mean retention at the first epoch reaching ``level`` (default: the highest
    memorisation every run reaches)."""
    if not runs:
        return None
    named = [dict(r, name=label(r)) for r in runs]
    chosen = level
    level, values = retention_at_equal_memorization(named, level)
    if level is None:
        return None
    table = Table("Retention at equal memorisation", ["run", "epoch", "memorisation %",
                                                      "retention mean %"],
                  note=f"Each run at its first epoch with memorisation >= {level * 100:.1f}%"
                       + (" (the highest level every run reaches)." if chosen is None else
                          "; a run that never gets there is listed as such."))
    for run in named:
        hit = first_at_level(run, level)
        if hit is None:
            best = max((e.get("memorization") or 0.0) for e in run.get("epochs", [{}]))
            table.rows.append([run["name"], DASH, f"never reached (best {best * 100:.1f})",
                               DASH])
        else:
            table.rows.append([run["name"], fmt(hit.get("epoch"), 0),
                               fmt(hit.get("memorization"), scale=100),
                               fmt(values.get(run["name"]))])
    return table


def pm(values: Sequence[float | None], digits: int = 1, scale: float = 1.0) -> str:
    """``mean ± sd`` of the numbers among ``values`` (``mean`` alone for one; a dash for
    none)."""
    mean, sd, n = mean_spread(values)
    if mean is None:
        return DASH
    text = fmt(mean, digits, scale)
    return text if sd is None else f"{text} ± {fmt(sd, digits, scale)}"


def groups_table(runs: Sequence[dict[str, Any]]) -> Table:
    """One row per method and learning rate: mean ± standard deviation over its seeds, at
    the first peak and at the best epoch."""
    table = Table("Methods over seeds (mean ± standard deviation)",
                  ["method", "seeds", "epochs trained", "first peak: epoch",
                   "memorisation %", "retention mean %", "best: memorisation %",
                   "retention mean %", "target NLL", "Fisher displ."],
                  note="First peak = the paper's checkpoint rule (first new maximum of "
                       "memorisation above the base model's that the next epoch does not "
                       "exceed); best = the epoch of highest memorisation.")
    for name, members in group_runs(runs).items():
        best = [best_entry(r) for r in members]
        table.rows.append([
            name, str(len(members)), pm([len(r.get("epochs", [])) for r in members]),
            pm([r.get("selected_epoch") for r in members]),
            pm([r.get("memorization") for r in members], scale=100),
            pm([r.get("retention_mean") for r in members]),
            pm([b.get("memorization") for b in best], scale=100),
            pm([b.get("retention_mean") for b in best]),
            pm([r.get("target_nll") for r in members], 3),
            pm([(r.get("fisher") or {}).get("total") for r in members], 4)])
    return table


def equal_memorization_groups_table(runs: Sequence[dict[str, Any]], level: float
                                    ) -> Table | None:
    """Retention at equal memorisation per method and learning rate (mean ± sd over the
    seeds that reach ``level``; how many did)."""
    if not runs:
        return None
    table = Table(f"Retention at equal memorisation ({level * 100:.0f}%), over seeds",
                  ["method", "seeds at the level", "epoch", "retention mean %",
                   "best memorisation % of the others"],
                  note=f"Each run at its first epoch with memorisation >= {level * 100:.1f}%; "
                       "seeds that never get there are counted, not averaged, and do not lower "
                       "the level for the others.")
    for name, members in group_runs(runs).items():
        hits = [first_at_level(r, level) for r in members]
        missed = [max((e.get("memorization") or 0.0) for e in r.get("epochs", [{}]))
                  for r, h in zip(members, hits) if h is None]
        reached = [h for h in hits if h is not None]
        table.rows.append([name, f"{len(reached)}/{len(members)}",
                           pm([h.get("epoch") for h in reached]),
                           pm([h.get("retention_mean") for h in reached]),
                           pm(missed, scale=100) if missed else DASH])
    return table


def epochs_table(run: dict[str, Any]) -> Table:
    suites = list(dict.fromkeys(k for e in run.get("epochs", []) for k in e.get("retention", {})))
    table = Table(f"Per epoch: {label(run)}", ["epoch", "memorisation %", "paraphrase %",
                                               *[f"{s} (% of base)" for s in suites],
                                               "retention mean %", "drift KL", "selected"])
    for e in run.get("epochs", []):
        retention = e.get("retention", {})
        table.rows.append([fmt(e.get("epoch"), 0), fmt(e.get("memorization"), scale=100),
                           fmt(e.get("paraphrase"), scale=100),
                           *[fmt(retention.get(s)) for s in suites], fmt(e.get("retention_mean")),
                           fmt(e.get("drift_kl"), 4),
                           "◀" if e.get("epoch") == run.get("selected_epoch") else ""])
    return table


def buckets_table(runs: Sequence[dict[str, Any]]) -> Table | None:
    with_buckets = [r for r in runs if r.get("error_buckets")]
    if not with_buckets:
        return None
    names = ["format", "leakage", "collapse", "genuine"]
    table = Table("Error buckets of wrong held-out answers", ["run", *names])
    for run in with_buckets:
        b = run["error_buckets"]
        if all(isinstance(v, dict) for v in b.values()):  # per suite -> summed
            b = {n: sum(v.get(n, 0) for v in b.values()) for n in names}
        table.rows.append([label(run), *[str(b.get(n, 0)) for n in names]])
    return table


def known_sets_table(results: dict[str, Any]) -> Table | None:
    """Suites scored on the base model's known set (general): how much it knew to begin with."""
    info = results["base"].get("suite_info") or {}
    if not info:
        return None
    table = Table("Known sets of the base model", ["suite", "items", "known by the base model",
                                                   "base accuracy %"],
                  note="Retention on these suites is the share of the known items still "
                       "answered correctly.")
    for name, entry in info.items():
        table.rows.append([name, fmt(entry.get("items"), 0), fmt(entry.get("known"), 0),
                           fmt(entry.get("base_accuracy"), scale=100)])
    return table


def targets_table(results: dict[str, Any]) -> Table | None:
    """What each target-based method trained on: verified targets, attempts, mixing."""
    targets = results.get("targets") or {}
    if not targets:
        return None
    fallback = any(len(t.get("realised_lambda") or {}) > 1 for t in targets.values())
    table = Table("Targets", ["targets", "records", "verified", "unverified (kept out)",
                              "mean attempts", "naive-token fraction", "mean tokens", "seconds",
                              *(["realised λ: verified (unverified)"] if fallback else [])],
                  note="With several targets files (one per seed) the counts are their mean."
                       + (" Realised λ: targets per λ of the fallback, summed over the files."
                          if fallback else ""))
    for name, t in targets.items():
        realised = "; ".join(f"{lam}: {c.get('verified', 0)} ({c.get('unverified', 0)})"
                             for lam, c in (t.get("realised_lambda") or {}).items())
        def count(v: Any) -> str:  # a mean over several files may be fractional
            return fmt(v, 0 if isinstance(v, (int, float)) and float(v).is_integer() else 1)

        table.rows.append([name, fmt(t.get("records"), 0), count(t.get("verified")),
                           count(t.get("unverified")), fmt(t.get("mean_attempts"), 2),
                           fmt(t.get("mean_naive_token_fraction"), 3),
                           fmt(t.get("mean_num_tokens"), 1), fmt(t.get("wall_s"), 0),
                           *([realised or DASH] if fallback else [])])
    return table


def trajectory_table(runs: Sequence[dict[str, Any]]) -> Table:
    """How long each run trained, and where its memorisation peaked."""
    table = Table("Training length, first peak and best epoch",
                  ["run", "epochs trained", "selected (first peak)", "best epoch",
                   "memorisation at best %", "retention mean at best %"])
    for run in runs:
        epochs = {e.get("epoch"): e for e in run.get("epochs", [])}
        best = epochs.get(run.get("best_epoch"), {})
        table.rows.append([label(run), fmt(len(epochs), 0), fmt(run.get("selected_epoch"), 0),
                           fmt(run.get("best_epoch"), 0),
                           fmt(best.get("memorization"), scale=100),
                           fmt(best.get("retention_mean"))])
    return table


def cost_line(results: dict[str, Any]) -> str:
    """One sentence: wall time and disk of the comparison (when recorded)."""
    parts = []
    stages = [r.get("seconds") for r in results.get("runs", [])] + [
        t.get("wall_s") for t in (results.get("targets") or {}).values()]
    stages = [s for s in stages if isinstance(s, (int, float))]
    if stages:
        parts.append(f"targets and runs {sum(stages) / 60:.1f} min as their stages recorded "
                     "them")
    if results.get("wall_s") is not None:
        parts.append(f"wall time {results['wall_s'] / 60:.1f} min")
    if results.get("disk_bytes") is not None:
        parts.append(f"{results['disk_bytes'] / 2**20:.0f} MiB on disk")
    return ("Cost of this comparison (the invocation that wrote it; cached stages are reused): "
            + ", ".join(parts) + ".") if parts else ""


def rounds_table(results: dict[str, Any]) -> Table | None:
    """Continual injection: after each round, memorisation of every round's facts so far and
    retention (mean ± sd over seeds)."""
    rounds = results.get("rounds") or {}
    entries = rounds.get("entries") or []
    if not entries:
        return None
    n = int(rounds.get("n") or max(e["round"] for e in entries))
    table = Table("Continual injection: after each round",
                  ["method", "after round", *[f"round {k} facts: memorisation %"
                                              for k in range(1, n + 1)], "retention mean %"],
                  note=f"{n} rounds of {', '.join(map(str, rounds.get('facts', [])))} facts, "
                       "each trained from the previous round's selected checkpoint; mean ± sd "
                       "over seeds at each round's selected epoch. Earlier rounds' columns "
                       "show forgetting of injected knowledge.")
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault((e["group"], e["round"]), []).append(e)
    for (group, r), members in groups.items():
        table.rows.append([group, str(r), *[
            pm([m["memorization"].get(str(k)) for m in members], scale=100) if k <= r else DASH
            for k in range(1, n + 1)], pm([m.get("retention_mean") for m in members])])
    return table


def _cell(value: Any, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def results_text(results: dict[str, Any]) -> str:
    """A plain-text table of every run (one screen), as ``mixsd compare`` prints it; with
    several seeds, one row per method and learning rate (mean ± sd) and the
    equal-memorisation comparison instead."""
    equal = results.get("equal_memorization") or {}
    if any(len(m) > 1 for m in group_runs(results["runs"]).values()):
        tables = [groups_table(results["runs"]),
                  equal_memorization_groups_table(results["runs"], equal.get("level") or 0.0),
                  rounds_table(results)]
        return "\n\n".join(t.to_text() for t in tables if t is not None)
    suites = sorted(results["base"].get("scores", {}))
    at_level = equal.get("retention_mean") or {}
    header = ["run", "ep", "memo", "para", *[f"{s.split(':')[-1][:10]}%" for s in suites],
              "ret%", f"ret%@m{_cell(equal.get('level'))}", "tgtNLL", "fisher", "sec"]
    base = results["base"]
    rows = [["base model", "-", _cell(base.get("memorization")), _cell(base.get("paraphrase")),
             *[_cell(base["scores"][s]) for s in suites], "100", "-", "-", "-", "-"]]
    for run in results["runs"]:
        fisher = (run.get("fisher") or {}).get("total")
        rows.append([run["name"], str(run["selected_epoch"]), _cell(run["memorization"]),
                     _cell(run["paraphrase"]),
                     *[_cell((run["retention"] or {}).get(s), "{:.0f}") for s in suites],
                     _cell(run["retention_mean"], "{:.0f}"),
                     _cell(at_level.get(run["name"]), "{:.0f}"),
                     _cell(run.get("target_nll"), "{:.3f}"), _cell(fisher, "{:.3g}"),
                     _cell(run.get("seconds"), "{:.0f}")])
    return Table("", header, rows).to_text()


def frontier_table(results: dict[str, Any], level: str) -> Table | None:
    """Each method's best point over the learning-rate grid at one memorisation level
    (results.json's ``frontier``), with every rate's retention beside it."""
    at = ((results.get("frontier") or {}).get("at_level") or {}).get(level)
    if not at:
        return None
    suites = sorted({s for m in at.values() for r in m["by_lr"].values()
                     for s in (r.get("retention") or {})})
    table = Table(f"Retention at {float(level) * 100:.0f}% memorisation: each method's best "
                  "learning rate", ["method", "best lr", "seeds there", "epoch",
                                    "memorisation %", "retention mean %",
                                    *[f"{s} %" for s in suites], "paraphrase %",
                                    "every lr: retention % (seeds there)"],
                  note="Each seed at its first epoch with memorisation at or above the level; "
                       "the best lr is the one with the highest mean retention among the rates "
                       "where most seeds get there (mean ± sd over those seeds). Every method "
                       "is read off the same learning-rate grid.")
    for method, entry in at.items():
        best = entry.get("best")
        others = "; ".join(
            f"{lr}: {fmt(r.get('retention_mean'))} ({r['seeds_reached']}/{r['seeds']})"
            for lr, r in entry["by_lr"].items())
        if best is None:
            table.rows.append([method, DASH, "none", DASH, DASH, DASH,
                               *[DASH for _ in suites], DASH, others])
            continue
        mean = fmt(best.get("retention_mean"))
        if best.get("retention_sd") is not None:
            mean += f" ± {fmt(best['retention_sd'])}"
        table.rows.append([method, f"{best['lr']:g}",
                           f"{best['seeds_reached']}/{best['seeds']}",
                           fmt(best.get("epoch"), 1), fmt(best.get("memorization"), scale=100),
                           mean, *[fmt((best.get("retention") or {}).get(s)) for s in suites],
                           fmt(best.get("paraphrase"), scale=100), others])
    return table


def instruct_failures_table(results: dict[str, Any], level: str) -> Table | None:
    """Why the instruction-following probe failed at one memorisation level: the items the
    base model complied with and the trained model does not, by bucket."""
    table_data = ((results.get("frontier") or {}).get("instruct_failures") or {}).get(level)
    if not table_data:
        return None
    table = Table(f"Instruction-following losses at {float(level) * 100:.0f}% memorisation",
                  ["method", "runs", "items the base complied with", "lost: reference style",
                   "injected name", "other"],
                  note="Summed over the seeds that reach the level, each at its first epoch "
                       "there. Reference style = the answer is written like the injected "
                       "targets ('The answer is X', \\boxed{}); injected name = an injected "
                       "entity appears; other = any other non-compliant answer.")
    for key, row in table_data.items():
        table.rows.append([key, str(row["runs"]), str(row["base_complied"]),
                           str(row["reference_style"]), str(row["injected_name"]),
                           str(row["other"])])
    return table


def stage_seconds_table(results: dict[str, Any]) -> Table | None:
    """Where a run's time goes: seconds per epoch of training and of evaluation (whole
    evaluations and memorisation-only ones of a staged evaluation), per method."""
    rows: dict[str, dict[str, list[float]]] = {}
    for run in results.get("runs", []):
        epochs = run.get("epochs") or []
        if not epochs or run.get("lr") is None:
            continue
        key = re.sub(r"\s*(lr|seed)=\S+", "", label(run)).strip()
        into = rows.setdefault(key, {"train": [], "full": [], "mem": []})
        evals = 0.0
        for e in epochs:
            extra = e.get("extra") or {}
            if isinstance(extra.get("eval_s"), (int, float)):
                evals += float(extra["eval_s"])
                staged = extra.get("full_eval")
                into["mem" if staged == 0.0 else "full"].append(float(extra["eval_s"]))
        if isinstance(run.get("seconds"), (int, float)):
            into["train"].append((float(run["seconds"]) - evals) / len(epochs))
    if not rows:
        return None
    table = Table("Seconds per epoch, by stage", ["method", "training and saving",
                                                  "whole evaluation", "memorisation only",
                                                  "evaluated epochs (whole / memorisation)"],
                  note="Mean ± sd seconds per epoch over the method's runs: training and "
                       "saving is a run's seconds minus its evaluations, per epoch; a staged "
                       "evaluation scores memorisation every epoch and everything else only "
                       "where memorisation first reaches a level, and at the last epoch.")
    for key, r in rows.items():
        table.rows.append([key, pm(r["train"]), pm(r["full"]), pm(r["mem"]),
                           f"{len(r['full'])} / {len(r['mem'])}"])
    return table


def frontier_tables(results: dict[str, Any]) -> list[Table]:
    """The frontier's tables (best point per method at each level, instruct losses) and the
    seconds per stage, for a comparison over a learning-rate grid (none otherwise)."""
    frontier = results.get("frontier") or {}
    lrs = {r.get("lr") for r in results.get("runs", []) if r.get("lr") is not None}
    if not frontier or len(lrs) < 2:
        return []
    levels = [f"{lv:g}" for lv in frontier.get("levels", [])]
    found = [frontier_table(results, lv) for lv in levels]
    found += [instruct_failures_table(results, lv) for lv in levels]
    found.append(stage_seconds_table(results))
    return [t for t in found if t is not None]
