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
import json
import time
from pathlib import Path
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


def run_memit(config: Any, spec: Any, seed: int, *, out: Path, records_path: Path,
              records: list, suites: dict[str, Any], base: dict[str, Any], base_model: Any,
              tokenizer: Any, fisher: Any) -> dict[str, Any]:
    """Edit, evaluate and describe one memit run (cached in ``RUN_DIR/entry.json``)."""
    from mixsd.editing.run import edit_model
    from mixsd.evaluation.buckets import buckets_from_samples, injected_names
    from mixsd.evaluation.callback import make_epoch_evaluator
    from mixsd.evaluation.results import make_run

    run_dir = out / "runs" / f"{spec.label}-s{seed}"
    entry_path = run_dir / "entry.json"
    if entry_path.exists():
        return json.loads(entry_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    edit_cfg = memit_config(config, seed)
    atomic_write_text(run_dir / "edit-config.yaml", edit_cfg.to_yaml())
    edited = copy.deepcopy(base_model)
    stats = edit_model(edited, tokenizer, read_records(records_path), edit_cfg)
    edit_s = time.perf_counter() - start
    checkpoint = run_dir / "epoch-1"
    edited.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    atomic_write_json(run_dir / "edit.json", stats)
    evaluator = make_epoch_evaluator(
        suites, records, base_scores=base["scores"], base_model=base_model,
        extractor=config.extractor, max_new_tokens=config.max_new_tokens,
        guidance=config.resolved_guidance(), batch_size=config.eval_batch_size,
        samples_dir=run_dir / "samples")
    metrics = evaluator(edited, tokenizer, 1)
    facts = stats["facts"]
    metrics.update(edit_s=edit_s, target_nll_before=sum(f["nll_before"] for f in facts)
                   / len(facts), target_nll_after=sum(f["nll_after"] for f in facts)
                   / len(facts))
    run = make_run(spec.kind, None, None, seed, [metrics], base_scores=base["scores"],
                   name=f"{spec.name} seed={seed}", label=spec.label,
                   guidance=edit_cfg.resolved_guidance(), edit={
                       "layers": stats["layers"], "per_layer": stats["per_layer"],
                       "target": edit_cfg.target, "cov_weight": edit_cfg.cov_weight})
    run["error_buckets"] = buckets_from_samples(
        run_dir / "samples", 1, suites, base_samples_dir=out / "base_samples",
        names=injected_names(records))
    run["fisher"] = fisher.displacement(checkpoint)
    run["seconds"] = round(time.perf_counter() - start, 3)
    atomic_write_json(entry_path, run)
    return run
