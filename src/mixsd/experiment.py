"""The experiment runner behind ``mixsd compare`` and ``mixsd demo``: a grid runner and the
recipe of one run.

One command runs every method on one corpus with identical evaluation (method.md,
"Baselines" and "Measurements"):

    corpus -> targets (per method) -> training with per-epoch evaluation -> first-peak
    selection and equal-memorisation comparison -> analyses (target NLL, Fisher
    displacement) -> results.json -> report

The pieces live with their stages: the grid's config and its translation into stage configs
in :mod:`mixsd.experiment_config`, corpus loading in :mod:`mixsd.corpora.load`, the cached
analyses in :mod:`mixsd.analysis`, the results schema in :mod:`mixsd.evaluation.results`,
the text table in :mod:`mixsd.report.tables`. Continual injection (``--rounds``) is
:mod:`mixsd.experiment_rounds`; the memit method is :mod:`mixsd.editing.compare`.

Every stage leaves its artifact under ``OUT/`` and is reused when it already exists, so a
killed run resumes where it stopped. One process writes ``OUT`` at a time (its lock,
:func:`mixsd.artifacts.open_stage`); ``OUT/run.json`` is written once the corpus and the model
have loaded, so a start that fails on them leaves nothing that refuses the corrected
command; ``--overwrite`` moves an old comparison aside to ``.OUT.replaced`` (kept whole until
the new one completes, then deleted: a comparison's runs record their own paths, so it is
not built elsewhere and renamed):

    OUT/corpus/train.jsonl          the injected facts
    OUT/config.yaml, OUT/run.json   the comparison's config and fingerprint (mixsd.artifacts)
    OUT/base.json                   the untouched model's scores (a keyed cache)
    OUT/targets/LABEL[-sSEED]/      one targets folder per target-based method (and run seed);
                                    an old comparison's LABEL[-sSEED].jsonl files are reused
    OUT/analysis/nll.json           mean per-token NLL of each targets folder under the base model
    OUT/runs/LABEL-lrLR-sSEED/      a training run (epoch-K/ checkpoints, metrics.jsonl, entry.json)
    OUT/runs/memit-sSEED/           an edit (epoch-1/ the edited model, edit.json, entry.json)
    OUT/results.json, OUT/report/   the comparison
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, RUNNING, KeyedCache, StageDir, decisive, open_stage
from mixsd.errors import MixsdError
from mixsd.experiment_config import EXTENDABLE_FIELDS, CompareConfig
from mixsd.io import folder_bytes
from mixsd.methods import MethodSpec, parse_method
from mixsd.records import KnowledgeRecord, targets_name, write_records
from mixsd.training.run import RESUMABLE_CHANGES

__all__ = ["CompareConfig", "Comparison", "check_out_dir", "parse_method", "prepare",
           "run_compare", "run_one", "targets_path"]


def open_out_dir(config: CompareConfig, out: Path, *, lock: bool = True) -> StageDir:
    """Open the comparison's folder (:func:`mixsd.artifacts.open_stage`), locked for this
    process (``with open_out_dir(...) as stage:``): refused when it was made with values
    that decide its artifacts differently (adding methods, learning rates or seeds is fine:
    :data:`EXTENDABLE_FIELDS`) unless ``config.overwrite``, which replaces it in place."""
    return open_stage(out, "comparison", config.decisive_dict(), mutable=EXTENDABLE_FIELDS,
                      defaults=config.later_defaults(), overwrite=config.overwrite,
                      overwrite_flag="--overwrite", in_place=True, lock=lock)


def check_out_dir(config: CompareConfig, out: Path) -> None:
    """Refuse to reuse an output folder made with other decisive values (:func:`open_out_dir`);
    reads only (no lock, nothing moved)."""
    open_out_dir(config, out, lock=False)


def run_fields(cmp: Comparison, run: Mapping[str, Any]) -> dict[str, Any]:
    """What decides one run's entry (the key of ``RUN_DIR/entry.json``): the stage config
    that makes it and the evaluation every run shares."""
    return {"run": decisive(run, RESUMABLE_CHANGES), "evaluation": base_fields(cmp.config)}


def entry_cache(run_dir: Path) -> KeyedCache:
    """A run's ``entry.json`` (:class:`mixsd.artifacts.KeyedCache`); an entry written before
    the cache (the run's dict itself) is read as it is."""
    return KeyedCache(run_dir / "entry.json", legacy=lambda d: d if "selected_epoch" in d else None)


# -- what every run shares ----------------------------------------------------------------
@dataclass
class Comparison:
    """What every run of a comparison shares: its config and folder, the corpus, the base
    model with its suites and scores, the targets files and the analyses' references."""

    config: CompareConfig
    out: Path
    records_path: Path
    records: list[KnowledgeRecord]
    model: Any
    tokenizer: Any
    suites: dict[str, Any]
    base: dict[str, Any]
    targets: dict[tuple[str, int], Path] = field(default_factory=dict)
    nll: dict[str, float] = field(default_factory=dict)
    fisher: Any = None
    drift: Any = None  # the base model's log-probabilities on the drift prompts (made once)
    base_device: Any = None  # where the base model was before park_base() moved it

    def drift_reference(self) -> Any:
        """The base model's :class:`~mixsd.evaluation.drift.DriftReference` on the drift
        prompts of the comparison's suites, computed once and shared by every run."""
        if self.drift is None:
            from mixsd.evaluation.callback import held_out_prompts
            from mixsd.evaluation.drift import DriftReference

            self.drift = DriftReference.from_model(self.model, self.tokenizer,
                                                   held_out_prompts(self.suites),
                                                   batch_size=self.config.eval_batch_size)
        return self.drift

    def park_base(self) -> None:
        """Move the base model off the accelerator while runs train (their drift compares
        against :meth:`drift_reference`, the Fisher is computed first): the training process
        holds one model, not two. Nothing moves on the CPU."""
        from mixsd.models import free_accelerator_memory

        device = next(self.model.parameters()).device
        if device.type == "cpu":
            return
        self.drift_reference()
        if self.fisher is not None:
            self.fisher.compute()
        self.base_device = device
        self.model.to("cpu")
        free_accelerator_memory()

    def unpark_base(self) -> None:
        """Bring the base model back to its device (an edit, memit, works on it)."""
        if self.base_device is not None:
            self.model.to(self.base_device)
            self.base_device = None

    def evaluator(self, samples_dir: Path, records: list[KnowledgeRecord] | None = None,
                  *, against_base: bool = True) -> Any:
        """The per-epoch evaluator of a run: the comparison's suites, memorisation of
        ``records`` (default the comparison's), sample logs under ``samples_dir``; with
        ``against_base`` also retention and drift against the base model (every run; not the
        base model's own evaluation)."""
        from mixsd.evaluation.callback import make_epoch_evaluator

        c = self.config
        vs_base = dict(base_scores=self.base["scores"], drift_reference=self.drift_reference()) \
            if against_base else {}
        return make_epoch_evaluator(
            self.suites, self.records if records is None else records, extractor=c.extractor,
            max_new_tokens=c.max_new_tokens, guidance=c.resolved_guidance(),
            batch_size=c.eval_batch_size, samples_dir=samples_dir,
            retention_levels=c.retention_levels if against_base else (),
            epochs=c.epochs, chat=c.chat_options(), **vs_base)

    def describe(self, run: dict[str, Any], run_dir: Path,
                 records: list[KnowledgeRecord] | None = None) -> dict[str, Any]:
        """Add the selected epoch's error buckets and Fisher displacement to ``run``."""
        from mixsd.evaluation.buckets import buckets_from_samples, injected_names

        epoch = run["selected_epoch"]
        run["error_buckets"] = buckets_from_samples(
            run_dir / "samples", epoch, self.suites, base_samples_dir=self.out / "base_samples",
            names=injected_names(self.records if records is None else records))
        checkpoint = run_dir / f"epoch-{epoch}"
        run["fisher"] = self.fisher.displacement(checkpoint) if checkpoint.exists() else None
        return run


def prepare_corpus(config: CompareConfig, out: Path, corpus: Any = None
                   ) -> tuple[Path, list[KnowledgeRecord]]:
    """Write the training records to ``OUT/corpus/train.jsonl`` (kept when there); return it
    and every record (the training ones plus evaluation splits) for the memorisation suites.
    ``corpus`` is the loaded corpus (:func:`mixsd.corpora.load.load_corpus`; loaded here
    when not given)."""
    from mixsd.corpora.load import load_corpus

    if corpus is None:
        corpus = load_corpus(config.corpus, model=config.model, n_facts=config.n_facts,
                             corpus_seed=config.corpus_seed, splits=config.eval_splits)
    path = out / "corpus" / "train.jsonl"
    if not path.exists():
        write_records(path, corpus.train)
    return path, corpus.records


def _load_dtype(config: CompareConfig) -> str:
    """The dtype of the comparison's base model (targets, evaluation): ``auto`` (bf16 on a GPU
    that has it) unless training asks for pure weights of one dtype."""
    return config.dtype if config.dtype in ("float32", "bfloat16") else "auto"


def base_fields(config: CompareConfig) -> dict[str, Any]:
    """What decides the base model's scores (their key in ``OUT/base.json``): the model, the
    corpus and the evaluation."""
    fields = {"model": config.model, "corpus": config.corpus, "n_facts": config.n_facts,
              "corpus_seed": config.corpus_seed, "suites": config.resolved_suites(),
              "eval_items": config.eval_items, "guidance": config.resolved_guidance(),
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
        from mixsd.answers import math_scorer  # math suites were string-matched before

        fields["math_scorer"] = math_scorer()
    if config.dtype != "auto":
        fields["dtype"] = config.dtype
    from mixsd.evaluation.runner import lmeval_options

    later = CompareConfig.later_defaults()  # lm-eval settings, where they are not lm-eval's
    fields.update({k: v for k, v in lmeval_options(config).items()
                   if k != "lmeval_unsafe_code" and v != later[k]})
    return fields


def evaluate_base(out: Path, model: Any, tokenizer: Any, evaluator: Any,
                  suite_info: dict[str, Any] | None = None, *,
                  key: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Scores of the untouched model through the SAME evaluator as every epoch of every run,
    cached in ``OUT/base.json`` (a :class:`mixsd.artifacts.KeyedCache` under ``key``, the
    :func:`base_fields`; a base.json written before the cache is read as it is)."""
    from mixsd.evaluation.results import epoch_entry, make_base

    def compute() -> dict[str, Any]:
        entry = epoch_entry(0, evaluator(model, tokenizer, 0))
        return make_base(entry["scores"], memorization=entry["memorization"],
                         paraphrase=entry["paraphrase"], splits=entry["splits"],
                         suite_info=suite_info or {})

    cache = KeyedCache(out / "base.json", legacy=lambda d: d if "scores" in d else None)
    return cache.get_or_compute(dict(key or {}), compute)


def targets_path(config: CompareConfig, spec: MethodSpec, run_seed: int, out: Path) -> Path:
    """The targets folder ``OUT/targets/LABEL/`` (one for every seed) or ``LABEL-sSEED/``;
    an ``OUT/targets/LABEL[-sSEED].jsonl`` file of a comparison made before targets became
    folders is that path instead (reused as it is)."""
    seed = config.targets_seed_for(spec, run_seed)
    name = spec.label if seed is None or config.targets_seed is not None \
        else f"{spec.label}-s{seed}"
    old = out / "targets" / f"{name}.jsonl"
    return old if old.is_file() else out / "targets" / name


def targets_summary(path: Path) -> dict[str, Any]:
    """The summary a targets run recorded (its folder's run.json, or an old file's sidecar;
    ``{}`` when there is none)."""
    from mixsd.targets.run import targets_run_info

    return targets_run_info(path).get("summary") or {}


def build_all_targets(config: CompareConfig, cmp: Comparison, bar: Any
                      ) -> dict[tuple[str, int], Path]:
    """The targets folder of every (target-based method, run seed): {(label, seed): path}.
    A complete folder (or an old single file) is reused; a cut one resumes."""
    from mixsd.targets import run_targets

    targets: dict[tuple[str, int], Path] = {}
    for spec in config.method_specs():
        if spec.kind in ("opsd", "memit"):
            continue
        for seed in config.seeds:
            path = targets_path(config, spec, seed, cmp.out)
            # Once per folder: SFT's (and a fixed --targets-seed's) is every seed's.
            if path not in targets.values():
                bar.start(f"targets {targets_name(path)}")
                if path.suffix != ".jsonl":  # an old comparison's file is reused as it is
                    run_targets(config.targets_config(spec, seed), cmp.records_path, path,
                                model=cmp.model, tokenizer=cmp.tokenizer)
            targets[(spec.label, seed)] = path
    return targets


def prepare(config: CompareConfig, out: Path, bar: Any, started: Any = None) -> Comparison:
    """Everything the runs share: the corpus, the base model, its retention suites and scores
    (cached), every targets file, their NLL under the base model (cached) and the Fisher
    reference (computed when a first run needs it). ``started()`` runs once the corpus and
    the model have loaded, before anything is written (it records the run as started)."""
    from mixsd.analysis.fisher import FisherReference
    from mixsd.analysis.nll import cached_target_nlls
    from mixsd.corpora.load import load_corpus
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import fingerprint_path
    from mixsd.evaluation.runner import lmeval_options
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer, model_key

    bar.start("base model")
    corpus = load_corpus(config.corpus, model=config.model, n_facts=config.n_facts,
                         corpus_seed=config.corpus_seed, splits=config.eval_splits)
    if any(s.kind == "memit" for s in config.method_specs()):  # fail early: needs subjects
        from mixsd.editing.memit import check_subjects

        check_subjects(corpus.train)
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device,
                                                dtype=_load_dtype(config),
                                                **config.hub_options())
    if started is not None:
        started()
    records_path, records = prepare_corpus(config, out, corpus)
    guidance = config.resolved_guidance()
    suite_names = config.resolved_suites()
    suites = get_suites(suite_names, toy_items=config.eval_items, guidance=guidance,
                        extractor=config.extractor, chat=config.chat_options(),
                        **lmeval_options(config)) if suite_names else {}
    suite_info = prepare_suites(suites, model, tokenizer, batch_size=config.eval_batch_size,
                                model_fingerprint=fingerprint_path(
                                    model_key(config.model_id(), config.revision)))
    cmp = Comparison(config, out, records_path, records, model, tokenizer, suites, base={})
    base_evaluator = cmp.evaluator(out / "base_samples", against_base=False)
    cmp.base = evaluate_base(out, model, tokenizer, base_evaluator, suite_info,
                             key=base_fields(config))
    cmp.targets = build_all_targets(config, cmp, bar)
    cmp.nll = cached_target_nlls(out / "analysis" / "nll.json", list(cmp.targets.values()),
                                 model, tokenizer, guidance=guidance,
                                 include_unverified=config.include_unverified,
                                 batch_size=config.eval_batch_size, chat=config.chat_options())
    cmp.fisher = FisherReference(model, tokenizer, suites, max_examples=config.fisher_examples,
                                 base_model_path=config.model_id())
    return cmp


# -- the recipe of one run ------------------------------------------------------------------
def run_one(cmp: Comparison, spec: MethodSpec, lr: float, seed: int, *, progress: Any = None,
            targets: Path | None = None, records_path: Path | None = None,
            records: list[KnowledgeRecord] | None = None, run_dir: Path | None = None,
            model: Any = None, floor: float | None = None, name: str | None = None,
            cached_only: bool = False) -> dict[str, Any] | None:
    """Train one (method, lr, seed) with per-epoch evaluation; its ``runs`` entry.

    The entry is cached in ``RUN_DIR/entry.json``; training itself resumes from its last
    complete epoch. ``progress`` (a :class:`mixsd.console.GridBar`) hears of every epoch.
    By default the run trains on the comparison's targets of (method, seed) (or its records,
    for OPSD) from the base model, and a peak must beat the base model's memorisation; the
    keywords change that for continual injection (:mod:`mixsd.experiment_rounds`): the
    ``targets``/``records_path`` trained on, the ``records`` scored, the ``run_dir``, the
    ``model`` to start from, the ``floor`` a peak must beat and the run's ``name``. With
    ``cached_only`` a run that is not complete is not trained: None."""
    from mixsd.evaluation.results import make_run
    from mixsd.training import read_metrics, train
    from mixsd.training.checkpoints import should_stop
    from mixsd.training.run import recorded_train_seconds

    config = cmp.config
    run_dir = run_dir or cmp.out / "runs" / f"{spec.label}-lr{lr:g}-s{seed}"
    if targets is None:
        targets = cmp.targets.get((spec.label, seed))
    floor = (cmp.base.get("memorization") or 0.0) if floor is None else floor
    cfg = config.train_config(spec, lr, seed, run_dir, targets, records_path or cmp.records_path,
                              floor, model=model)
    entries, key = entry_cache(run_dir), run_fields(cmp, cfg.decisive_dict())
    found = entries.get(key)
    if found is not None or cached_only:
        return found
    start = time.perf_counter()
    evaluator = cmp.evaluator(run_dir / "samples", records)

    def callback(model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        if progress is not None:
            progress.epoch(epoch)
        return evaluator(model, tokenizer, epoch)

    # OPSD with full fine-tuning from the base model: the comparison's base model is the
    # teacher (on the training device while the run trains), not a third copy of the weights.
    teacher = cmp.model if spec.kind == "opsd" and not cfg.lora and model is None else None
    if teacher is not None:
        cmp.unpark_base()
    try:
        trained = train(cfg, epoch_callback=callback, teacher=teacher)
    finally:
        if teacher is not None:
            cmp.park_base()
    metrics = read_metrics(run_dir)
    if len(metrics) < config.epochs and not should_stop(metrics, patience=config.stop_patience,
                                                        at=config.stop_at, above=floor):
        raise MixsdError(f"{run_dir}: {len(metrics)} evaluated epoch(s) of {config.epochs}; "
                         "remove the run folder to train it again")
    run = make_run(spec.kind, spec.mix_lambda, lr, seed, metrics, base_scores=cmp.base["scores"],
                   target_nll=cmp.nll.get(targets_name(targets)) if targets else None,
                   name=name or f"{spec.name} lr={lr:g} seed={seed}",
                   label=spec.label, guidance=cfg.guidance, select_floor=floor,
                   **({"mix_unit": spec.mix_unit} if spec.mix_unit != "token" else {}))
    cmp.describe(run, run_dir, records)
    # This call's seconds plus the training seconds earlier calls recorded (a resumed run).
    earlier_s = recorded_train_seconds(run_dir) - trained.wall_s
    run["seconds"] = round(time.perf_counter() - start + max(earlier_s, 0.0), 3)
    entries.put(key, run)
    return run


# -- the grid -----------------------------------------------------------------------------
# The memorisation levels at which results.json's frontier compares methods (issue: 50%, 80%).
FRONTIER_LEVELS = (0.5, 0.8)


def collect_results(cmp: Comparison, runs: list[dict[str, Any]], start: float,
                    **extra: Any) -> dict[str, Any]:
    """results.json of a comparison's runs: the equal-memorisation comparison, the targets'
    summaries, the analyses, disk use and seconds (``extra``: more top-level keys)."""
    from mixsd.evaluation.results import (
        make_results,
        retention_at_equal_memorization,
        target_summaries,
    )

    config = cmp.config
    level, at_level = retention_at_equal_memorization(runs, config.equal_memorization)
    files: dict[str, list[Path]] = {}  # each method's targets files, once each
    for (label, _), path in cmp.targets.items():
        if path not in files.setdefault(label, []):
            files[label].append(path)
    summaries = {label: [targets_summary(p) for p in paths] for label, paths in files.items()}
    extra.setdefault("frontier", frontier_of(cmp, runs))
    from mixsd.editing.compare import memit_efficacy

    edits = {r["name"]: memit_efficacy(cmp, r) for r in runs if r.get("method") == "memit"}
    if any(v is not None for v in edits.values()):
        extra.setdefault("memit_efficacy", edits)
    return make_results(cmp.base, runs, config=config.to_dict(), model=config.model,
                        corpus=config.corpus, target_nll=cmp.nll,
                        equal_memorization={"level": level, "retention_mean": at_level},
                        targets=target_summaries(summaries), disk_bytes=folder_bytes(cmp.out),
                        wall_s=round(time.perf_counter() - start, 3), **extra)


def frontier_of(cmp: Comparison, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's ``frontier`` (:func:`mixsd.analysis.frontier.frontier_summary`): every
    measured (lr, seed, epoch) point and each method's best point at 50% and 80%
    memorisation, with the instruct failure buckets read from the runs' sample logs."""
    from mixsd.analysis.frontier import frontier_summary
    from mixsd.evaluation.buckets import injected_names

    run_dirs = {r["name"]: cmp.out / "runs" / f"{r['label']}-lr{r['lr']:g}-s{r['seed']}"
                for r in runs if r.get("lr") is not None and r.get("label")}
    return frontier_summary(runs, FRONTIER_LEVELS, run_dirs=run_dirs,
                            base_samples_dir=cmp.out / "base_samples",
                            names=injected_names(cmp.records))


def run_compare(config: CompareConfig) -> dict[str, Any]:
    """Run the whole comparison; return a summary (``results``, ``results_path``,
    ``report_path``, ``wall_s``). With ``rounds > 1``: continual injection
    (:func:`mixsd.experiment_rounds.run_rounds`). With ``quiet`` the console shows one bar
    and everything else goes to ``OUT/log.txt``."""
    from mixsd.console import quiet_console
    from mixsd.models import check_device_available

    out = Path(config.out)
    check_device_available(config.device)
    with open_out_dir(config, out) as stage, \
            quiet_console(out / "log.txt", config.quiet) as terminal:
        if config.rounds > 1:
            from mixsd.experiment_rounds import run_rounds

            return run_rounds(config, out, terminal, stage)
        return _run_grid(config, out, terminal, stage)


def _run_grid(config: CompareConfig, out: Path, terminal: Any, stage: StageDir
              ) -> dict[str, Any]:
    from mixsd.console import GridBar
    from mixsd.editing.compare import run_memit

    start = time.perf_counter()
    grid = config.grid()
    bar = GridBar(total=len(grid), file=terminal)
    cmp = prepare(config, out, bar, started=lambda: stage.write_info(config, status=RUNNING))
    cmp.park_base()
    runs, missing = [], []
    for spec, lr, seed in grid:
        if spec.kind == "memit":
            bar.start(f"{spec.name} seed={seed}")
            cmp.unpark_base()
            run = run_memit(cmp, spec, seed, cached_only=config.collect_only)
            name = f"{spec.name} seed={seed}"
        else:
            bar.start(f"{spec.name} lr={lr:g} seed={seed}")
            run = run_one(cmp, spec, lr, seed, progress=bar, cached_only=config.collect_only)
            name = f"{spec.name} lr={lr:g} seed={seed}"
        if run is None:
            missing.append(name)
        else:
            runs.append(run)
        bar.done()
    bar.close()
    if not runs:
        raise MixsdError(f"{out}: no run of the grid is complete yet (collect_only)")
    extra = {"missing_runs": missing} if missing else {}
    return finish(config, out, collect_results(cmp, runs, start, **extra), start, stage)


def finish(config: CompareConfig, out: Path, results: dict[str, Any], start: float,
           stage: StageDir) -> dict[str, Any]:
    """Write results.json and the report, mark the comparison's ``stage`` complete (an
    overwrite's old folder is deleted now); the summary of :func:`run_compare`."""
    from mixsd.evaluation.results import write_results

    results_path = write_results(out / "results.json", results)
    report_path = None
    if config.report:
        from mixsd.report import write_report

        report_path = write_report([results_path], out / "report")
    wall_s = time.perf_counter() - start
    stage.write_info(config, status=COMPLETE, wall_s=round(wall_s, 3))
    stage.commit()
    return {"results": results, "results_path": results_path, "report_path": report_path,
            "wall_s": wall_s}
