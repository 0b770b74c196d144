"""Continual injection (``mixsd compare --rounds N``): facts injected in rounds, one after another.

Users inject knowledge more than once. The training facts are split into N consecutive
rounds of (nearly) equal size; for every (method, learning rate, seed) round r trains on its
own facts only, starting from round r-1's SELECTED checkpoint (the first peak of round r's
memorisation), and after every epoch measures:

* ``memorization``: this round's facts;
* ``split/round-K``: the facts of every earlier round K (forgetting of injected knowledge);
* retention of the base model's capabilities (the same suites and base scores as a single
  round, so retention is cumulative: % of the ORIGINAL model's score).

Targets are written once per method and seed by the frozen base model on the whole corpus
(as in a single round) and split by record; OPSD's teacher is the model a round starts
from. LoRA is not supported here (a round would have to merge the previous adapter).

Layout (beside a single-round comparison's files)::

    OUT/rounds/data/round-R.jsonl                  the facts of round R
    OUT/rounds/targets/LABEL[-sSEED]-round-R/       a method's targets of round R (a targets
                                                   folder; LABEL...-round-R.jsonl in older
                                                   comparisons, reused as it is)
    OUT/rounds/runs/LABEL-lrLR-sSEED/round-R/       a training run (epoch-K/, entry.json)

The plans are made by :func:`round_plans` and run by the comparison's one loop
(:mod:`mixsd.compare.loop`). ``results.json`` holds every round's run (name ``... lr=LR round=R seed=S``) and a
``rounds`` object: ``{"n": N, "facts": [per-round counts], "entries": [{"group", "seed",
"round", "selected_epoch", "memorization": {"1": fraction, ...}, "retention_mean"}]}``,
memorisation of each round's facts seen so far, at the round's selected epoch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, Reuse, open_stage
from mixsd.compare.context import Comparison
from mixsd.compare.plan import RunPlan, run_dir_name
from mixsd.errors import ConfigError
from mixsd.evaluation.schema import RunResult
from mixsd.records import (
    TARGETS_FILE,
    KnowledgeRecord,
    read_records,
    read_targets,
    targets_name,
    write_records,
)
from mixsd.targets.run import targets_run_info


def split_rounds(records: list[KnowledgeRecord], n: int) -> list[list[KnowledgeRecord]]:
    """``records`` in ``n`` consecutive chunks whose sizes differ by at most one."""
    if n > len(records):
        raise ConfigError(f"rounds: {n} rounds need at least {n} facts, the corpus has "
                          f"{len(records)} (flag --rounds)")
    size, extra = divmod(len(records), n)
    chunks, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        chunks.append(records[start:end])
        start = end
    return chunks


def round_eval_records(chunks: list[list[KnowledgeRecord]], r: int) -> list[KnowledgeRecord]:
    """What round ``r`` (1-based) is evaluated on: its own facts (split train, with their
    paraphrases) and each earlier round's facts as split ``round-K`` (no paraphrases)."""
    current = [dataclasses.replace(rec, split="train") for rec in chunks[r - 1]]
    earlier = [dataclasses.replace(rec, split=f"round-{k + 1}", paraphrases=[])
               for k in range(r - 1) for rec in chunks[k]]
    return current + earlier


def round_targets(full: Path, ids: set[str], path: Path) -> Path:
    """The targets of one round: the lines of ``full`` whose record is in ``ids``, written as
    the targets folder ``path`` through the artifact layer (its run.json holds the summary of
    the targets it was cut from). An older comparison's ``path.jsonl`` (a single file, with
    a ``.run.json`` sidecar) is reused as it is."""
    old = path.with_name(f"{path.name}.jsonl")
    if old.is_file():
        return old
    fields = {"cut_from": targets_name(full), "records": sorted(ids)}
    with open_stage(path, "targets", fields,
                    reuse=Reuse(has_outputs=(path / TARGETS_FILE).is_file())) as stage:
        if not stage.complete:
            write_records(path / TARGETS_FILE,
                          [t for t in read_targets(full) if t.record.id in ids])
            stage.write_info(status=COMPLETE, summary=targets_run_info(full).get("summary"))
    return path


def rounds_entry(run: RunResult, group: str, r: int) -> dict[str, Any]:
    """The ``rounds.entries`` item of one round's run (at its selected epoch)."""
    chosen = run.epoch(run.selected_epoch)
    assert chosen is not None  # make_run selects one of the run's epochs
    memo = {str(r): chosen.memorization}
    for split, value in chosen.splits.items():
        if split.startswith("round-"):
            memo[split[len("round-"):]] = value
    return {"group": group, "seed": run.seed, "round": r,
            "selected_epoch": run.selected_epoch,
            "memorization": dict(sorted(memo.items(), key=lambda kv: int(kv[0]))),
            "retention_mean": chosen.retention_mean}


def round_plans(cmp: Comparison) -> tuple[list[RunPlan], list[list[KnowledgeRecord]]]:
    """The plans of continual injection (the module docstring): for every (method, learning
    rate, seed) of the grid, round 1 from the base model, round r from round r-1's selected
    checkpoint; and the facts of each round. Writes each round's facts and targets."""
    config, folder = cmp.config, cmp.out / "rounds"
    chunks = split_rounds(read_records(cmp.records_path), config.rounds)
    data = [folder / "data" / f"round-{r + 1}.jsonl" for r in range(config.rounds)]
    for path, chunk in zip(data, chunks):
        if not path.exists():
            write_records(path, chunk)
    plans = []
    for spec, lr, seed in config.grid():
        full = cmp.targets.get((spec.label, seed))
        previous = None
        for r in range(1, config.rounds + 1):
            ids = {rec.id for rec in chunks[r - 1]}
            tpath = None if full is None else round_targets(
                full, ids, folder / "targets" / f"{targets_name(full)}-round-{r}")
            run_dir = folder / "runs" / run_dir_name(spec, lr, seed) / f"round-{r}"
            plans.append(RunPlan(spec, lr, seed, f"{spec.name} lr={lr:g} round={r} seed={seed}",
                                 run_dir, data[r - 1], targets=tpath,
                                 records=round_eval_records(chunks, r), start_after=previous,
                                 nll_of=targets_name(full) if full else None, round=r))
            previous = run_dir
    return plans, chunks


def rounds_summary(done: list[tuple[RunPlan, RunResult]],
                   chunks: list[list[KnowledgeRecord]]) -> dict[str, Any]:
    """results.json's ``rounds``: the number of rounds, each round's facts and every round's
    run at its selected epoch (:func:`rounds_entry`), from the (plan, run) pairs of the loop."""
    entries = [rounds_entry(run, f"{plan.spec.name} lr={plan.lr:g}", plan.round)
               for plan, run in done]
    return {"n": len(chunks), "facts": [len(c) for c in chunks], "entries": entries}
