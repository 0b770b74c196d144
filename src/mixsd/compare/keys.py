"""What decides a comparison's artifacts: the fingerprints of its folder, of the base model's
scores, of every run's entry, and where each targets folder lives.

These keys are what a stopped comparison resumes by (:mod:`mixsd.artifacts`: one fingerprint
for every stage and cache), so they stay byte-for-byte what earlier comparisons wrote: a field
added since is left out at its default (``later=True`` in :mod:`mixsd.config`), and
``tests/unit/compare/test_frozen_keys.py`` pins the hashes of the shipped configs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mixsd.answers import math_scorer
from mixsd.artifacts import KeyedCache, Reuse, StageDir, decisive, open_stage
from mixsd.compare.config import CompareConfig
from mixsd.evaluation.config import lmeval_options
from mixsd.methods import MethodSpec
from mixsd.training.run import RESUMABLE_CHANGES

# Fields that may change between two invocations on the same --out: they add runs or change
# only presentation; every other field decides artifacts that are reused.
EXTENDABLE_FIELDS = ("methods", "lr", "method_lr", "seeds", "out", "report", "device",
                     "eval_batch_size", "equal_memorization", "quiet", "keep", "collect_only",
                     "overwrite", "report_to", "logging_steps", "gradient_checkpointing",
                     "eval_from_checkpoint", "lmeval_unsafe_code")


def open_out_dir(config: CompareConfig, out: Path, *, lock: bool = True) -> StageDir:
    """Open the comparison's folder (:func:`mixsd.artifacts.open_stage`), locked for this
    process (``with open_out_dir(...) as stage:``): refused when it was made with values
    that decide its artifacts differently (adding methods, learning rates or seeds is fine:
    :data:`EXTENDABLE_FIELDS`) unless ``config.overwrite``, which replaces it in place."""
    return open_stage(out, "comparison", config.decisive_dict(),
                      reuse=Reuse(mutable=EXTENDABLE_FIELDS, defaults=config.later_defaults()),
                      overwrite=config.overwrite,
                      overwrite_flag="--overwrite", in_place=True, lock=lock)


def check_out_dir(config: CompareConfig, out: Path) -> None:
    """Refuse to reuse an output folder made with other decisive values (:func:`open_out_dir`);
    reads only (no lock, nothing moved)."""
    open_out_dir(config, out, lock=False)


def base_fields(config: CompareConfig) -> dict[str, Any]:
    """What decides the base model's scores (their key in ``OUT/base.json``): the model, the
    corpus and the evaluation."""
    fields = {"model": config.model, "corpus": config.corpus, "n_facts": config.n_facts,
              "corpus_seed": config.corpus_seed, "suites": config.resolved_suites(),
              **config.eval.composite_options(), "guidance": config.resolved_guidance(),
              "extractor": config.extractor, "max_new_tokens": config.max_new_tokens}
    # Added later: in the key only when set, so the caches of earlier comparisons still hit.
    if config.eval_splits is not None:
        fields["eval_splits"] = list(config.eval_splits)
    if config.retention_levels:
        fields["retention_levels"] = list(config.retention_levels)
    fields.update(config.chat_options())
    if config.revision:
        fields["revision"] = config.revision
    if any(s.startswith("math:") for s in config.resolved_suites()):
        fields["math_scorer"] = math_scorer()  # math suites were string-matched before
    if config.train.dtype != "auto":
        fields["dtype"] = config.train.dtype
    later = CompareConfig.later_defaults()  # lm-eval settings, where they are not lm-eval's
    fields.update({k: v for k, v in lmeval_options(config.eval).items()
                   if k != "lmeval_unsafe_code" and v != later[k]})
    return fields


def model_fields(config: CompareConfig) -> dict[str, Any]:
    """Which base model a comparison loads (part of the key of its targets' NLL)."""
    fields: dict[str, Any] = {"model": config.model}
    if config.revision:
        fields["revision"] = config.revision
    if config.train.dtype != "auto":
        fields["dtype"] = config.train.dtype
    return fields


def run_fields(config: CompareConfig, run: Mapping[str, Any]) -> dict[str, Any]:
    """What decides one run's entry (the key of ``RUN_DIR/entry.json``): the stage config
    that makes it (a TrainConfig's or an EditConfig's ``decisive_dict()``) and the evaluation
    every run shares."""
    return {"run": decisive(run, RESUMABLE_CHANGES), "evaluation": base_fields(config)}


def entry_cache(run_dir: Path) -> KeyedCache:
    """A run's ``entry.json`` (:class:`mixsd.artifacts.KeyedCache`); an entry written before
    the cache (the run's dict itself) is read as it is."""
    return KeyedCache(run_dir / "entry.json", legacy=lambda d: d if "selected_epoch" in d else None)


def targets_seed_for(config: CompareConfig, spec: MethodSpec, run_seed: int) -> int | None:
    """The seed of a method's targets for one run: ``targets_seed``, else the run's seed;
    None for SFT, whose targets (y*) have no coins."""
    if spec.kind == "sft":
        return None
    return config.targets_seed if config.targets_seed is not None else run_seed


def targets_path(config: CompareConfig, spec: MethodSpec, run_seed: int, out: Path) -> Path:
    """The targets folder ``OUT/targets/LABEL/`` (one for every seed) or ``LABEL-sSEED/``;
    an ``OUT/targets/LABEL[-sSEED].jsonl`` file of a comparison made before targets became
    folders is that path instead (reused as it is)."""
    seed = targets_seed_for(config, spec, run_seed)
    name = spec.label if seed is None or config.targets_seed is not None \
        else f"{spec.label}-s{seed}"
    old = out / "targets" / f"{name}.jsonl"
    return old if old.is_file() else out / "targets" / name
