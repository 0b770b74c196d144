"""The recipe of one trained run of a comparison: train a plan's stage config with per-epoch
evaluation, check it ran to its end, select its epoch and describe it (the run entry).

The loop (:mod:`mixsd.compare.loop`) decides whether it runs at all (the entry cache);
training itself resumes from the run's last complete epoch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mixsd.compare.context import Comparison
from mixsd.compare.plan import RunPlan
from mixsd.errors import MixsdError
from mixsd.evaluation.results import RunId, make_run
from mixsd.evaluation.schema import RunResult
from mixsd.training import read_metrics, train
from mixsd.training.checkpoints import should_stop
from mixsd.training.config import TrainConfig
from mixsd.training.run import recorded_train_seconds


def _train(cmp: Comparison, plan: RunPlan, cfg: TrainConfig, start: Path | None,
           progress: Any) -> float:
    """Train ``cfg`` with the comparison's per-epoch evaluator; the seconds this call trained."""
    evaluator = cmp.evaluator(plan.run_dir / "samples", plan.records)

    def callback(model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        if progress is not None:
            progress.epoch(epoch)
        return evaluator(model, tokenizer, epoch)

    # OPSD with full fine-tuning from the base model: the comparison's base model is the
    # teacher (on the training device while the run trains), not a third copy of the weights.
    teacher = cmp.model if plan.spec.kind == "opsd" and not cfg.lora and start is None else None
    if teacher is not None:
        cmp.unpark_base()
    try:
        return train(cfg, epoch_callback=callback, teacher=teacher).wall_s
    finally:
        if teacher is not None:
            cmp.park_base()


def train_run(cmp: Comparison, plan: RunPlan, cfg: TrainConfig, start: Path | None,
              progress: Any = None) -> RunResult:
    """Train one plan (``cfg``, from ``start`` or the base model) and return its run entry;
    ``progress`` (a :class:`mixsd.console.GridBar`) hears of every epoch."""
    spec, run_dir = plan.spec, plan.run_dir
    began = time.perf_counter()
    trained_s = _train(cmp, plan, cfg, start, progress)
    metrics = read_metrics(run_dir)
    if len(metrics) < cfg.epochs and not should_stop(metrics, patience=cfg.stop_patience,
                                                     at=cfg.stop_at, above=cfg.stop_above):
        raise MixsdError(f"{run_dir}: {len(metrics)} evaluated epoch(s) of {cfg.epochs}; "
                         "remove the run folder to train it again")
    run = make_run(RunId(spec.kind, spec.mix_lambda, plan.lr, plan.seed, plan.name), metrics,
                   base_scores=cmp.base["scores"],
                   target_nll=cmp.nll.get(plan.nll_of) if plan.targets else None,
                   label=spec.label, guidance=cfg.guidance,
                   select_floor=cfg.stop_above,
                   **({"mix_unit": spec.mix_unit} if spec.mix_unit != "token" else {}))
    # This call's seconds plus the training seconds earlier calls recorded (a resumed run).
    earlier_s = recorded_train_seconds(run_dir) - trained_s
    return run.updated(**cmp.describe(run_dir, run.selected_epoch, plan.records),
                       seconds=round(time.perf_counter() - began + max(earlier_s, 0.0), 3))
