"""The ``memit`` method of `mixsd compare`: one edit of the base model, one evaluation.

There are no epochs: a copy of the base model is edited once with every training fact, then
scored by the SAME evaluator as every epoch of every trained method, and the run entry has
that single evaluation as epoch 1 (so selection, tables and the report work unchanged). The
edited model is saved as ``RUN_DIR/epoch-1/`` so the Fisher displacement and the error
buckets read it as they read a training checkpoint. Its plan is made by the grid planner
(:func:`mixsd.compare.plan.grid_plans`) and run by the one loop, which owns its entry cache.

    OUT/runs/memit-sSEED/epoch-1/      the edited model
    OUT/runs/memit-sSEED/edit.json     per-fact value statistics, per-layer update norms
    OUT/runs/memit-sSEED/edit-config.yaml, entry.json, samples/epoch-1/, efficacy.json
"""

from __future__ import annotations

import copy
import time
from typing import Any

from mixsd.compare.context import Comparison
from mixsd.compare.plan import RunPlan
from mixsd.editing.config import EditConfig
from mixsd.editing.memit import edit_requests, target_scores
from mixsd.editing.run import edit_model
from mixsd.evaluation.results import RunId, make_run
from mixsd.evaluation.schema import RunResult
from mixsd.io import atomic_write_json, atomic_write_text, read_json_or_empty
from mixsd.models import load_model
from mixsd.records import read_records


def _mean(rows: list[dict[str, float]], key: str) -> float:
    return sum(r[key] for r in rows) / max(1, len(rows))


def edit_run(cmp: Comparison, plan: RunPlan, edit_cfg: EditConfig) -> dict[str, Any]:
    """Edit a copy of the base model with the plan's facts, save it as ``RUN_DIR/epoch-1``,
    evaluate and describe it: the run entry."""
    run_dir, tokenizer, spec = plan.run_dir, cmp.tokenizer, plan.spec
    start = time.perf_counter()
    atomic_write_text(run_dir / "edit-config.yaml", edit_cfg.to_yaml())
    edited = copy.deepcopy(cmp.model)
    stats = edit_model(edited, tokenizer, read_records(plan.records_path), edit_cfg)
    edit_s = time.perf_counter() - start
    checkpoint = run_dir / "epoch-1"
    edited.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    atomic_write_json(run_dir / "edit.json", stats)
    metrics = cmp.evaluator(run_dir / "samples")(edited, tokenizer, 1)
    facts = stats["facts"]
    metrics.update(edit_s=edit_s, efficacy=stats["efficacy"],
                   efficacy_before=stats["efficacy_before"],
                   target_nll_before=_mean(facts, "nll_before"),
                   target_nll_after=_mean(facts, "nll_after"))
    run = make_run(RunId(spec.kind, seed=plan.seed, name=plan.name), [metrics],
                   base_scores=cmp.base["scores"], label=spec.label, guidance=edit_cfg.resolved_guidance(),
                   edit={"layers": stats["layers"], "per_layer": stats["per_layer"],
                         "target": edit_cfg.target, "cov_weight": edit_cfg.cov_weight})
    return run.updated(**cmp.describe(run_dir, run.selected_epoch),
                       seconds=round(time.perf_counter() - start, 3))


def memit_efficacy(cmp: Comparison, run: RunResult) -> dict[str, Any] | None:
    """MEMIT's own measure of a memit run of the comparison: the share of facts whose object
    the edited model writes right after the edit prompt (teacher-forced argmax), beside the
    chat-question memorisation, read from the saved edit (``RUN_DIR/epoch-1``) and cached in
    ``RUN_DIR/efficacy.json``; None when the edited model is not on disk."""
    run_dir = cmp.out / "runs" / f"{run.more['label']}-s{run.seed}"
    cached = read_json_or_empty(run_dir / "efficacy.json")
    if cached:
        return cached
    checkpoint = run_dir / "epoch-1"
    if not checkpoint.is_dir():
        return None
    edit_cfg = cmp.config.memit_config(int(run.seed or 0))
    requests = edit_requests(cmp.tokenizer, read_records(cmp.records_path), edit_cfg)
    edited = load_model(str(checkpoint), device=cmp.config.device)
    after = target_scores(edited, requests)
    before = target_scores(cmp.model, requests)
    del edited

    found = {"facts": len(requests), "efficacy": _mean(after, "efficacy"),
             "efficacy_before": _mean(before, "efficacy"),
             "token_accuracy": _mean(after, "token_accuracy"),
             "target_nll_before": _mean(before, "nll"), "target_nll_after": _mean(after, "nll"),
             "memorization": run.get("memorization"), "target": edit_cfg.target,
             "layers": (run.get("edit") or {}).get("layers")}
    atomic_write_json(run_dir / "efficacy.json", found)
    return found
