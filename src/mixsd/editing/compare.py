"""The ``memit`` method of `mixsd compare`: one edit of the base model, one evaluation.

There are no epochs: a copy of the base model is edited once with every training fact, then
scored by the SAME evaluator as every epoch of every trained method, and the run entry has
that single evaluation as epoch 1 (so selection, tables and the report work unchanged). The
edited model is saved as ``RUN_DIR/epoch-1/`` so the Fisher displacement and the error
buckets read it as they read a training checkpoint.

    OUT/runs/memit-sSEED/epoch-1/      the edited model
    OUT/runs/memit-sSEED/edit.json     per-fact value statistics, per-layer update norms
    OUT/runs/memit-sSEED/edit-config.yaml, entry.json, samples/epoch-1/
"""

from __future__ import annotations

import copy
import time
from typing import Any

from mixsd.editing.config import EditConfig
from mixsd.errors import ConfigError
from mixsd.io import atomic_write_json, atomic_write_text
from mixsd.records import read_records


def memit_config(config: Any, seed: int) -> EditConfig:
    """EditConfig defaults < the compare's ``edit_config`` YAML < the compare's model,
    guidance, device and seed."""
    try:
        data = EditConfig.load_yaml(config.edit_config) if config.edit_config else {}
    except ConfigError as exc:
        raise ConfigError(f"{exc} (flag --edit-config)") from None
    data.update(model=config.model, guidance=config.resolved_guidance(), device=config.device,
                seed=seed)
    return EditConfig.from_dict(data, source=config.edit_config or "edit_config")


def run_memit(cmp: Any, spec: Any, seed: int, *, cached_only: bool = False
              ) -> dict[str, Any] | None:
    """Edit, evaluate and describe one memit run of a comparison (a
    :class:`mixsd.experiment.Comparison`), cached in ``RUN_DIR/entry.json``; with
    ``cached_only`` an edit not made yet is not made: None."""
    from mixsd.editing.run import edit_model
    from mixsd.evaluation.results import make_run
    from mixsd.experiment import entry_cache, run_fields

    config, tokenizer = cmp.config, cmp.tokenizer
    run_dir = cmp.out / "runs" / f"{spec.label}-s{seed}"
    edit_cfg = memit_config(config, seed)
    entries, key = entry_cache(run_dir), run_fields(cmp, edit_cfg.decisive_dict())
    found = entries.get(key)
    if found is not None or cached_only:
        return found
    start = time.perf_counter()
    atomic_write_text(run_dir / "edit-config.yaml", edit_cfg.to_yaml())
    edited = copy.deepcopy(cmp.model)
    stats = edit_model(edited, tokenizer, read_records(cmp.records_path), edit_cfg)
    edit_s = time.perf_counter() - start
    checkpoint = run_dir / "epoch-1"
    edited.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    atomic_write_json(run_dir / "edit.json", stats)
    metrics = cmp.evaluator(run_dir / "samples")(edited, tokenizer, 1)
    facts = stats["facts"]
    metrics.update(edit_s=edit_s, efficacy=stats["efficacy"],
                   efficacy_before=stats["efficacy_before"], target_nll_before=sum(f["nll_before"] for f in facts)
                   / len(facts), target_nll_after=sum(f["nll_after"] for f in facts)
                   / len(facts))
    run = make_run(spec.kind, None, None, seed, [metrics], base_scores=cmp.base["scores"],
                   name=f"{spec.name} seed={seed}", label=spec.label,
                   guidance=edit_cfg.resolved_guidance(), edit={
                       "layers": stats["layers"], "per_layer": stats["per_layer"],
                       "target": edit_cfg.target, "cov_weight": edit_cfg.cov_weight})
    cmp.describe(run, run_dir)
    run["seconds"] = round(time.perf_counter() - start, 3)
    entries.put(key, run)
    return run


def memit_efficacy(cmp: Any, run: dict[str, Any]) -> dict[str, Any] | None:
    """MEMIT's own measure of a memit run of the comparison: the share of facts whose object
    the edited model writes right after the edit prompt (teacher-forced argmax), beside the
    chat-question memorisation, read from the saved edit (``RUN_DIR/epoch-1``) and cached in
    ``RUN_DIR/efficacy.json``; None when the edited model is not on disk."""
    from mixsd.editing.memit import edit_requests, target_scores
    from mixsd.io import read_json_or_empty
    from mixsd.models import load_model

    run_dir = cmp.out / "runs" / f"{run['label']}-s{run['seed']}"
    cached = read_json_or_empty(run_dir / "efficacy.json")
    if cached:
        return cached
    checkpoint = run_dir / "epoch-1"
    if not checkpoint.is_dir():
        return None
    edit_cfg = memit_config(cmp.config, int(run["seed"]))
    requests = edit_requests(cmp.tokenizer, read_records(cmp.records_path), edit_cfg)
    edited = load_model(str(checkpoint), device=cmp.config.device)
    after = target_scores(edited, requests)
    before = target_scores(cmp.model, requests)
    del edited

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return sum(r[key] for r in rows) / max(1, len(rows))

    found = {"facts": len(requests), "efficacy": mean(after, "efficacy"),
             "efficacy_before": mean(before, "efficacy"),
             "token_accuracy": mean(after, "token_accuracy"),
             "target_nll_before": mean(before, "nll"), "target_nll_after": mean(after, "nll"),
             "memorization": run.get("memorization"), "target": edit_cfg.target,
             "layers": (run.get("edit") or {}).get("layers")}
    atomic_write_json(run_dir / "efficacy.json", found)
    return found
