"""``mixsd eval``: score any model on named suites, optionally as % of a base model (its
config: :class:`mixsd.evaluation.config.EvalConfig`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, Reuse, StageDir, open_stage
from mixsd.evaluation.config import EvalConfig
from mixsd.evaluation.samples import write_sample_logs
from mixsd.io import atomic_write_json
from mixsd.models import model_key


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Score ``config.model`` on every suite; returns ``{"model", "scores", "n", "base",
    "retention", "retention_mean", "wall_s"}`` (base entries only with ``base_model``);
    with ``out``, also ``scores.json``, the sample logs and run.json there."""
    start = time.perf_counter()
    config.check_complete()
    stage = open_eval_dir(config) if config.out else None  # refused before any model loads
    try:
        return _evaluate(config, start, stage)
    finally:
        if stage is not None:
            stage.close()


def _evaluate(config: EvalConfig, start: float, stage: StageDir | None) -> dict[str, Any]:
    """The evaluation of :func:`run_eval`, written into ``stage`` when there is one."""
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import (
        base_scores,
        fingerprint_path,
        retention_mean,
        retention_table,
    )
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer, resolve_model_path

    suites = get_suites(config.suite, **config.suite_build_options())
    base_summary: dict[str, Any] = {}
    if config.base_model:
        # The base model first: known-set suites (general) are restricted to what it knows.
        base, base_tok = load_model_and_tokenizer(config.base_model, device=config.device,
                                                  dtype=config.dtype, **config.hub_options())
        base_id = model_key(resolve_model_path(config.base_model), config.revision)
        info = prepare_suites(suites, base, base_tok, model_fingerprint=fingerprint_path(base_id),
                              batch_size=config.batch_size, cache_dir=config.cache_dir)
        base_summary["base"] = base_scores(base, base_tok, suites, cache_dir=config.cache_dir,
                                           model_id=base_id, batch_size=config.batch_size)
        if info:
            base_summary["suite_info"] = info
        del base
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device,
                                                dtype=config.dtype, **config.hub_options())
    results = {name: suite.evaluate(model, tokenizer, batch_size=config.batch_size)
               for name, suite in suites.items()}
    summary: dict[str, Any] = {"model": config.model,
                               "scores": {k: float(r.score) for k, r in results.items()},
                               "n": {k: int(r.n) for k, r in results.items()}, **base_summary}
    if config.base_model:
        summary["retention"] = retention_table(summary["scores"], summary["base"])
        summary["retention_mean"] = retention_mean(summary["retention"])
    summary["wall_s"] = time.perf_counter() - start
    if stage is not None:
        atomic_write_json(stage.path / "scores.json", summary)
        write_sample_logs(stage.path / "samples", results)
        stage.write_info(config, status=COMPLETE, wall_s=round(summary["wall_s"], 3))
    return summary


# What may change between two evaluations written to one folder (they decide no score).
EVAL_MUTABLE = ("out", "device", "batch_size", "cache_dir")


def open_eval_dir(config: EvalConfig) -> StageDir:
    """Open ``config.out`` (:func:`mixsd.artifacts.open_stage`) for ``scores.json``, the
    sample logs and run.json: the same evaluation writes the folder again, another one
    (other model, suites or settings) is refused, naming the fields that differ."""
    out = Path(str(config.out))
    return open_stage(out, "eval", config.decisive_dict(),
                      reuse=Reuse(mutable=EVAL_MUTABLE, defaults=config.later_defaults(),
                                  has_outputs=(out / "scores.json").is_file()))
