"""The loop of ``mixsd compare`` and ``mixsd demo``: plan the runs, execute every plan once
(the entry cache), assemble the results.

One command runs every method on one corpus with identical evaluation (docs/method.md,
"Baselines" and "Measurements"):

    prepare (corpus, base model and scores, targets, NLL)  -> mixsd.compare.context
    plan (the grid, or rounds; memit as one edit)          -> mixsd.compare.plan, .rounds
    execute every plan: train or edit, cached per run      -> this module, .train, .memit
    results.json and the report                            -> mixsd.compare.results

Every stage leaves its artifact under ``OUT/`` and is reused when it already exists, so a
killed run resumes where it stopped. One process writes ``OUT`` at a time (its lock,
:func:`mixsd.artifacts.open_stage`); ``OUT/run.json`` is written once the corpus and the model
have loaded, so a start that fails on them leaves nothing that refuses the corrected
command; ``--overwrite`` moves an old comparison aside to ``.OUT.replaced`` (kept whole until
the new one completes, then deleted: a comparison's runs record their own paths, so it is
not built elsewhere and renamed):

    OUT/config.yaml, OUT/run.json   the comparison's config and fingerprint (mixsd.artifacts)
    OUT/runs/LABEL-lrLR-sSEED/      a training run (epoch-K/ checkpoints, metrics.jsonl, entry.json)
    OUT/runs/memit-sSEED/           an edit (epoch-1/ the edited model, edit.json, entry.json)
    OUT/rounds/                     continual injection (mixsd.compare.rounds)
    OUT/results.json, OUT/report/   the comparison
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mixsd.artifacts import RUNNING, StageDir
from mixsd.compare.config import CompareConfig
from mixsd.compare.context import Comparison, prepare
from mixsd.compare.keys import entry_cache, open_out_dir, run_fields
from mixsd.compare.memit import edit_run
from mixsd.compare.plan import RunPlan, grid_plans, train_config
from mixsd.compare.results import collect_results, finish
from mixsd.compare.rounds import round_plans, rounds_summary
from mixsd.compare.train import train_run
from mixsd.console import GridBar, quiet_console
from mixsd.errors import MixsdError
from mixsd.evaluation.schema import RunResult
from mixsd.models import check_device_available

Done = list[tuple[RunPlan, RunResult]]


def run_compare(config: CompareConfig) -> dict[str, Any]:
    """Run the whole comparison; return a summary (``results``, ``results_path``,
    ``report_path``, ``wall_s``). With ``rounds > 1``: continual injection
    (:mod:`mixsd.compare.rounds`). With ``quiet`` the console shows one bar and everything
    else goes to ``OUT/log.txt``."""
    out = Path(config.out)
    check_device_available(config.device)
    with open_out_dir(config, out) as stage, \
            quiet_console(out / "log.txt", config.quiet) as terminal:
        return _compare(config, out, terminal, stage)


def _compare(config: CompareConfig, out: Path, terminal: Any, stage: StageDir
             ) -> dict[str, Any]:
    start = time.perf_counter()
    bar = GridBar(total=len(config.grid()) * config.rounds, file=terminal)
    cmp = prepare(config, out, bar, started=lambda: stage.write_info(config, status=RUNNING))
    cmp.park_base()
    chunks = None
    if config.rounds > 1:
        plans, chunks = round_plans(cmp)
    else:
        plans = grid_plans(config, out, cmp.records_path, cmp.targets)
    done, missing = run_plans(cmp, plans, bar, cached_only=config.collect_only)
    bar.close()
    if not done:
        raise MixsdError(f"{out}: no run of the grid is complete yet (collect_only)")
    extra: dict[str, Any] = {"missing_runs": missing} if missing else {}
    if chunks is not None:
        extra["rounds"] = rounds_summary(done, chunks)
    results = collect_results(cmp, [run for _, run in done], start, **extra)
    return finish(config, out, results, start, stage)


def run_plans(cmp: Comparison, plans: list[RunPlan], bar: Any, *, cached_only: bool = False
              ) -> tuple[Done, list[str]]:
    """Execute the plans in order (:func:`execute`): the (plan, run entry) pairs of those
    complete, and the names of those missing (``cached_only``: nothing is trained)."""
    done: Done = []
    by_dir: dict[Path, RunResult] = {}
    missing = []
    for plan in plans:
        bar.start(plan.name)
        run = execute(cmp, plan, by_dir, progress=bar, cached_only=cached_only)
        if run is None:
            missing.append(plan.name)
        else:
            done.append((plan, run))
            by_dir[plan.run_dir] = run
        bar.done()
    return done, missing


def start_model(plan: RunPlan, by_dir: dict[Path, RunResult]) -> Path | None:
    """The checkpoint a plan starts from: the selected epoch of the run it follows (rounds),
    None for the base model."""
    if plan.start_after is None:
        return None
    return plan.start_after / f"epoch-{by_dir[plan.start_after].selected_epoch}"


def execute(cmp: Comparison, plan: RunPlan, by_dir: dict[Path, RunResult], *,
            progress: Any = None, cached_only: bool = False) -> RunResult | None:
    """One plan's run entry: from ``RUN_DIR/entry.json`` when its stage config and the shared
    evaluation are unchanged (:func:`mixsd.compare.keys.run_fields`), else trained or edited
    now and cached. None with ``cached_only`` when it is not complete, or when the run it
    starts from is missing."""
    if plan.start_after is not None and plan.start_after not in by_dir:
        return None
    start = start_model(plan, by_dir)
    if plan.edits:
        cmp.unpark_base()
        stage_cfg: Any = cmp.config.memit_config(plan.seed)
    else:
        stage_cfg = train_config(cmp.config, plan, floor=cmp.base.get("memorization") or 0.0,
                                 start=start)
    entries, key = entry_cache(plan.run_dir), run_fields(cmp.config, stage_cfg.decisive_dict())
    cached = entries.get(key)
    run = None if cached is None else RunResult.from_json(cached)
    if run is None and not cached_only:
        run = edit_run(cmp, plan, stage_cfg) if plan.edits else \
            train_run(cmp, plan, stage_cfg, start, progress)
        entries.put(key, run.to_json())
    if run is None or plan.round is None:
        return run
    # A round's run reports its round and the NLL of the targets its round's were cut from.
    nll = cmp.nll.get(plan.nll_of) if plan.nll_of else run.target_nll
    return run.updated(round=plan.round, target_nll=nll)
