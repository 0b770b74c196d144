"""The report a user reads: Markdown and a self-contained HTML page from results.json files.

``write_report([RUN_DIR or results.json, ...], OUT)`` writes into ``OUT``:

* ``frontier.png`` (memorisation–retention frontier, base model marked), ``epochs.png``
  (metrics per epoch), ``nll.png`` (target NLL bars) and ``fisher.png`` (Fisher-weighted
  displacement bars), the last two when the results carry those analyses;
* ``report.md`` (tables, with the PNGs linked beside it);
* ``report.html`` (the same tables, the PNGs embedded as base64: one file to send around).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.evaluation.results import read_results
from mixsd.evaluation.schema import RunResult
from mixsd.io import atomic_write_text
from mixsd.report import plots
from mixsd.report.tables import (
    Table,
    base_table,
    buckets_table,
    epochs_table,
    equal_memorization_groups_table,
    equal_memorization_table,
    frontier_tables,
    groups_table,
    known_sets_table,
    rounds_table,
    runs_table,
    suite_names,
    targets_table,
    trajectory_table,
)

CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:13px}"""


def _load(paths: Sequence[str | Path]) -> tuple[list[dict[str, Any]], list[str]]:
    if not paths:
        raise MixsdError("no results given: pass RUN_DIR(s) holding results.json")
    results = [read_results(p) for p in paths]
    names = [Path(p).name if Path(p).is_dir() else Path(p).parent.name for p in paths]
    if len(set(names)) < len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    return results, names


def _runs(results: Sequence[dict[str, Any]], sources: Sequence[str]) -> list[dict[str, Any]]:
    """Every run, read through the schema (:class:`RunResult`: an old file's runs get the
    keys of today's), tagged with its source when several results are combined."""
    tag = len(results) > 1
    return [dict(RunResult.from_json(run).to_json(), _source=src if tag else "")
            for res, src in zip(results, sources) for run in res["runs"]]


def _figures(runs: list[dict[str, Any]], results: Sequence[dict[str, Any]],
             sources: Sequence[str], out: Path) -> list[tuple[str, Path]]:
    tag = len(results) > 1
    bases = [(src if tag else "", res["base"]) for res, src in zip(results, sources)]
    figures = [("Memorisation–retention frontier", plots.frontier_plot(runs, bases,
                                                                        out / "frontier.png")),
               ("Metrics per epoch", plots.epochs_plot(runs, out / "epochs.png"))]
    extra = results[0]["base"].get("target_nll")  # e.g. {"y* (reference)": 3.2}
    nll = plots.nll_plot(runs, out / "nll.png", extra if isinstance(extra, dict) else None)
    if nll:
        figures.append(("Target NLL under the base model", nll))
    fisher = plots.fisher_plot(runs, out / "fisher.png")
    if fisher:
        figures.append(("Fisher-weighted displacement", fisher))
    if len(results) == 1 and results[0].get("rounds"):
        figures.append(("Continual injection: memorisation of each round's facts and "
                        "retention after every round",
                        plots.rounds_plot(results[0], out / "rounds.png")))
    return figures


def _tables(runs: list[dict[str, Any]], results: Sequence[dict[str, Any]],
            sources: Sequence[str]) -> list[Table]:
    tables = [base_table(results, sources)]
    if len(results) == 1:
        tables += [t for t in (known_sets_table(results[0]), targets_table(results[0]))
                   if t is not None]
        tables += frontier_tables(results[0])
    level = (results[0].get("equal_memorization") or {}).get("level") if len(results) == 1 \
        else None
    if level is not None:
        tables += [groups_table(runs), equal_memorization_groups_table(runs, level)]
    tables += [t for t in (rounds_table(results[0]),) if t is not None]
    tables += [runs_table(runs, suite_names(results)), trajectory_table(runs)]
    for optional in (equal_memorization_table(runs, level), buckets_table(runs)):
        if optional is not None:
            tables.append(optional)
    tables.extend(epochs_table(run) for run in runs)
    return tables


def _header(results: Sequence[dict[str, Any]], sources: Sequence[str]) -> list[str]:
    lines = []
    for res, src in zip(results, sources):
        bits = [f"{k}: {res[k]}" for k in ("model", "corpus", "created") if res.get(k)]
        lines.append(f"{src}: {len(res['runs'])} runs" + (f" ({'; '.join(bits)})" if bits else ""))
        if res.get("missing_runs"):
            lines.append(f"{src}: {len(res['missing_runs'])} runs of the grid were missing "
                         f"(not complete when collected): {', '.join(res['missing_runs'])}")
    return lines


def render_markdown(tables: Sequence[Table], figures: Sequence[tuple[str, Path]],
                    header: Sequence[str]) -> str:
    parts = ["# MixSD report", "", *[f"- {h}" for h in header], ""]
    for title, path in figures:
        parts += [f"## {title}", "", f"![{title}]({path.name})", ""]
    parts += ["## Tables", ""] + [t.to_markdown() for t in tables]
    return "\n".join(parts)


def render_html(tables: Sequence[Table], figures: Sequence[tuple[str, Path]],
                header: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(h)}</li>" for h in header)
    figs = "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,"
        f"{base64.b64encode(path.read_bytes()).decode()}'>" for title, path in figures)
    body = "".join(t.to_html() for t in tables)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>MixSD report</title>"
            f"<style>{CSS}</style></head><body><h1>MixSD report</h1><ul>{items}</ul>{figs}"
            f"<h2>Tables</h2>{body}</body></html>\n")


def write_report(results_paths: Sequence[str | Path], out_dir: str | Path) -> Path:
    """Write the plots, ``report.md`` and the self-contained ``report.html``; return the
    HTML page's path. ``results_paths`` are results.json files or folders holding one; a
    folder written by ``mixsd inject`` gets its ``report.md`` (returned), plot and model card
    (``model-card.md``) again."""
    from mixsd.report.inject import SUMMARY, is_injection, model_card, write_inject_report

    if len(results_paths) == 1 and is_injection(results_paths[0]):  # `mixsd inject`'s folder
        summary = json.loads((Path(results_paths[0]) / SUMMARY).read_text(encoding="utf-8"))
        atomic_write_text(Path(out_dir) / "model-card.md", model_card(summary))
        return write_inject_report(summary, out_dir)
    results, sources = _load(results_paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = _runs(results, sources)
    figures = _figures(runs, results, sources, out)
    tables = _tables(runs, results, sources)
    header = _header(results, sources)
    atomic_write_text(out / "report.md", render_markdown(tables, figures, header))
    return atomic_write_text(out / "report.html", render_html(tables, figures, header))


__all__ = ["write_report", "render_markdown", "render_html"]
