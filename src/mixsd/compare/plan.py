"""The plans of a comparison: what each run trains on, what it is scored on, where it starts
and where it is written, decided before anything runs.

A planner turns the comparison's config into :class:`RunPlan` items; the one loop
(:mod:`mixsd.compare.loop`) executes them in order. Planners:

* :func:`grid_plans`: every (method, learning rate, seed) of the grid, from the base model,
  on the comparison's targets; the memit method as one edit plan per comparison;
* :func:`mixsd.compare.rounds.round_plans`: continual injection, each round starting from the
  previous round's selected checkpoint.

The stage configs of a plan (:func:`targets_config`, :func:`train_config`,
:meth:`CompareConfig.memit_config`) are the comparison's stage configs with what the plan
decides replaced; their ``decisive_dict()`` is the run's cache key
(:func:`mixsd.compare.keys.run_fields`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mixsd.compare.config import CompareConfig
from mixsd.compare.keys import targets_seed_for
from mixsd.methods import MethodSpec
from mixsd.records import KnowledgeRecord, targets_name
from mixsd.targets.config import TargetsConfig
from mixsd.training.config import TrainConfig


@dataclass(frozen=True)
class RunPlan:
    """One run of a comparison, decided before it runs.

    ``targets`` is what an NLL method trains on (None for OPSD and memit), ``records_path``
    the facts OPSD rolls out on and memit edits, ``records`` what memorisation is scored on
    (None: the comparison's records), ``start_after`` the run folder of the plan whose
    selected checkpoint this run starts from (None: the base model), ``nll_of`` the targets
    folder whose NLL under the base model the run reports, ``round`` the continual-injection
    round (None outside rounds)."""

    spec: MethodSpec
    lr: float | None
    seed: int
    name: str
    run_dir: Path
    records_path: Path
    targets: Path | None = None
    records: list[KnowledgeRecord] | None = None
    start_after: Path | None = None
    nll_of: str | None = None
    round: int | None = None

    @property
    def edits(self) -> bool:
        """An edit (memit), not a training run."""
        return self.spec.kind == "memit"


def run_dir_name(spec: MethodSpec, lr: float | None, seed: int) -> str:
    """``LABEL-lrLR-sSEED`` (a trained run) or ``LABEL-sSEED`` (an edit)."""
    return f"{spec.label}-s{seed}" if lr is None else f"{spec.label}-lr{lr:g}-s{seed}"


def grid_plans(config: CompareConfig, out: Path, records_path: Path,
               targets: dict[tuple[str, int], Path]) -> list[RunPlan]:
    """The plans of the grid (:meth:`CompareConfig.grid`), seed by seed, edits last: each run
    from the base model on the targets of (method, seed) (``targets``) or, for OPSD and
    memit, on ``records_path``."""
    plans = []
    for spec, lr, seed in config.grid():
        path = targets.get((spec.label, seed))
        name = f"{spec.name} seed={seed}" if lr is None else f"{spec.name} lr={lr:g} seed={seed}"
        plans.append(RunPlan(spec, lr, seed, name, out / "runs" / run_dir_name(spec, lr, seed),
                             records_path, targets=path,
                             nll_of=targets_name(path) if path else None))
    return plans


def targets_config(config: CompareConfig, spec: MethodSpec, run_seed: int) -> TargetsConfig:
    """The targets stage of a target-based method for one run seed: the comparison's
    targets config with the method's λ, unit and guidance, the λ fallback below its λ and
    the seed of its coins."""
    lam = spec.mix_lambda
    return replace(config.targets, method=spec.targets_method,
                   mix_lambda=lam if lam is not None else 0.0, mix_unit=spec.mix_unit,
                   lambda_fallback=[x for x in config.lambda_fallback
                                    if lam is not None and x < lam],
                   seed=targets_seed_for(config, spec, run_seed) or 0,
                   guidance=spec.guidance or config.resolved_guidance())


def train_config(config: CompareConfig, plan: RunPlan, floor: float = 0.0,
                 start: Path | None = None) -> TrainConfig:
    """The training stage of one plan: the comparison's train config on its targets (NLL)
    or its records (OPSD), at its learning rate and seed; it stops early above ``floor``
    (the memorisation a peak must beat) and starts from ``start`` (default the comparison's
    model). An NLL run has no rollouts: OPSD's settings stay TrainConfig's defaults there,
    so its key is what it always was."""
    spec = plan.spec
    run = replace(config.train, model=str(start) if start is not None else config.model,
                  out=str(plan.run_dir), lr=plan.lr, seed=plan.seed, stop_above=floor,
                  guidance=spec.guidance or config.resolved_guidance(),
                  progress=not config.quiet, method=spec.train_method)
    if spec.kind == "opsd":
        return replace(run, data=str(plan.records_path))
    return replace(run, targets=str(plan.targets), **TrainConfig.opsd_defaults())
