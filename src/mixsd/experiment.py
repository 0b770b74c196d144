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
killed run resumes where it stopped:

    OUT/corpus/train.jsonl          the injected facts
    OUT/base.json                   the untouched model's scores
    OUT/targets/LABEL.jsonl         one targets file per target-based method (and run seed)
    OUT/analysis/nll.json           mean per-token NLL of each target file under the base model
    OUT/runs/LABEL-lrLR-sSEED/      a training run (epoch-K/ checkpoints, metrics.jsonl, entry.json)
    OUT/runs/memit-sSEED/           an edit (epoch-1/ the edited model, edit.json, entry.json)
    OUT/results.json, OUT/report/   the comparison
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.experiment_config import EXTENDABLE_FIELDS, CompareConfig
from mixsd.io import atomic_write_json, folder_bytes, write_run_info
from mixsd.methods import MethodSpec, parse_method
from mixsd.records import KnowledgeRecord, read_records, write_records

__all__ = ["CompareConfig", "Comparison", "check_out_dir", "parse_method", "prepare",
           "run_compare", "run_one", "targets_path"]


def check_out_dir(config: CompareConfig, out: Path) -> None:
    """Refuse to reuse an output folder made with a config that decides its artifacts
    differently (adding methods, learning rates or seeds is fine)."""
    import yaml

    path = out / "config.yaml"
    if not path.exists():
        return
    old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    new = config.to_dict()
    changed = [k for k in new if k not in EXTENDABLE_FIELDS and k in old and old[k] != new[k]]
    if changed:
        raise MixsdError(f"{out} holds a comparison made with other values of "
                         f"{', '.join(changed)}; its artifacts would be reused: choose another "
                         "--out or remove that folder")


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

    def evaluator(self, samples_dir: Path, records: list[KnowledgeRecord] | None = None,
                  *, against_base: bool = True) -> Any:
        """The per-epoch evaluator of a run: the comparison's suites, memorisation of
        ``records`` (default the comparison's), sample logs under ``samples_dir``; with
        ``against_base`` also retention and drift against the base model (every run; not the
        base model's own evaluation)."""
        from mixsd.evaluation.callback import make_epoch_evaluator

        c = self.config
        vs_base = dict(base_scores=self.base["scores"], base_model=self.model) \
            if against_base else {}
        return make_epoch_evaluator(
            self.suites, self.records if records is None else records, extractor=c.extractor,
            max_new_tokens=c.max_new_tokens, guidance=c.resolved_guidance(),
            batch_size=c.eval_batch_size, samples_dir=samples_dir, **vs_base)

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


def prepare_corpus(config: CompareConfig, out: Path) -> tuple[Path, list[KnowledgeRecord]]:
    """Write the training records to ``OUT/corpus/train.jsonl`` (kept when there); return it
    and every record (the training ones plus evaluation splits) for the memorisation suites."""
    from mixsd.corpora.load import load_corpus

    corpus = load_corpus(config.corpus, model=config.model, n_facts=config.n_facts,
                         corpus_seed=config.corpus_seed)
    path = out / "corpus" / "train.jsonl"
    if not path.exists():
        write_records(path, corpus.train)
    return path, corpus.records


def evaluate_base(out: Path, model: Any, tokenizer: Any, evaluator: Any,
                  suite_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scores of the untouched model through the SAME evaluator as every epoch of every run
    (``OUT/base.json``, reused when present)."""
    from mixsd.evaluation.results import epoch_entry, make_base

    path = out / "base.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    entry = epoch_entry(0, evaluator(model, tokenizer, 0))
    base = make_base(entry["scores"], memorization=entry["memorization"],
                     paraphrase=entry["paraphrase"], splits=entry["splits"],
                     suite_info=suite_info or {})
    atomic_write_json(path, base)
    return base


def targets_path(config: CompareConfig, spec: MethodSpec, run_seed: int, out: Path) -> Path:
    """``OUT/targets/LABEL.jsonl`` (one file for every seed) or ``LABEL-sSEED.jsonl``."""
    seed = config.targets_seed_for(spec, run_seed)
    if seed is None or config.targets_seed is not None:
        return out / "targets" / f"{spec.label}.jsonl"
    return out / "targets" / f"{spec.label}-s{seed}.jsonl"


def targets_summary(path: Path) -> dict[str, Any]:
    """The summary a targets run wrote beside its file (``{}`` when there is none)."""
    sidecar = Path(str(path) + ".run.json")
    info = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
    return info.get("summary") or {}


def build_all_targets(config: CompareConfig, cmp: Comparison, bar: Any
                      ) -> dict[tuple[str, int], Path]:
    """The targets file of every (target-based method, run seed): {(label, seed): path}.
    A file already there is reused."""
    from mixsd.targets import run_targets

    targets: dict[tuple[str, int], Path] = {}
    for spec in config.method_specs():
        if spec.kind in ("opsd", "memit"):
            continue
        for seed in config.seeds:
            path = targets_path(config, spec, seed, cmp.out)
            if path not in targets.values():
                bar.start(f"targets {path.stem}")
            if not path.exists():
                run_targets(config.targets_config(spec, seed), cmp.records_path, path,
                            model=cmp.model, tokenizer=cmp.tokenizer)
            targets[(spec.label, seed)] = path
    return targets


def prepare(config: CompareConfig, out: Path, bar: Any) -> Comparison:
    """Everything the runs share: the corpus, the base model, its retention suites and scores
    (cached), every targets file, their NLL under the base model (cached) and the Fisher
    reference (computed when a first run needs it)."""
    from mixsd.analysis.fisher import FisherReference
    from mixsd.analysis.nll import cached_target_nlls
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import fingerprint_path
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer

    bar.start("base model")
    records_path, records = prepare_corpus(config, out)
    if any(s.kind == "memit" for s in config.method_specs()):  # fail early: needs subjects
        from mixsd.editing.memit import check_subjects

        check_subjects(read_records(records_path))
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device)
    guidance = config.resolved_guidance()
    suite_names = config.resolved_suites()
    suites = get_suites(suite_names, toy_items=config.eval_items, guidance=guidance,
                        extractor=config.extractor) if suite_names else {}
    suite_info = prepare_suites(suites, model, tokenizer, batch_size=config.eval_batch_size,
                                model_fingerprint=fingerprint_path(config.model_id()))
    cmp = Comparison(config, out, records_path, records, model, tokenizer, suites, base={})
    base_evaluator = cmp.evaluator(out / "base_samples", against_base=False)
    cmp.base = evaluate_base(out, model, tokenizer, base_evaluator, suite_info)
    cmp.targets = build_all_targets(config, cmp, bar)
    cmp.nll = cached_target_nlls(out / "analysis" / "nll.json", list(cmp.targets.values()),
                                 model, tokenizer, guidance=guidance,
                                 include_unverified=config.include_unverified,
                                 batch_size=config.eval_batch_size)
    cmp.fisher = FisherReference(model, tokenizer, suites, max_examples=config.fisher_examples,
                                 base_model_path=config.model_id())
    return cmp


# -- the recipe of one run ------------------------------------------------------------------
def run_one(cmp: Comparison, spec: MethodSpec, lr: float, seed: int, *, progress: Any = None,
            targets: Path | None = None, records_path: Path | None = None,
            records: list[KnowledgeRecord] | None = None, run_dir: Path | None = None,
            model: Any = None, floor: float | None = None, name: str | None = None
            ) -> dict[str, Any]:
    """Train one (method, lr, seed) with per-epoch evaluation; its ``runs`` entry.

    The entry is cached in ``RUN_DIR/entry.json``; training itself resumes from its last
    complete epoch. ``progress`` (a :class:`mixsd.console.GridBar`) hears of every epoch.
    By default the run trains on the comparison's targets of (method, seed) (or its records,
    for OPSD) from the base model, and a peak must beat the base model's memorisation; the
    keywords change that for continual injection (:mod:`mixsd.experiment_rounds`): the
    ``targets``/``records_path`` trained on, the ``records`` scored, the ``run_dir``, the
    ``model`` to start from, the ``floor`` a peak must beat and the run's ``name``."""
    from mixsd.evaluation.results import make_run
    from mixsd.training import read_metrics, train
    from mixsd.training.checkpoints import should_stop
    from mixsd.training.run import recorded_train_seconds

    config = cmp.config
    run_dir = run_dir or cmp.out / "runs" / f"{spec.label}-lr{lr:g}-s{seed}"
    entry_path = run_dir / "entry.json"
    if entry_path.exists():
        return json.loads(entry_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    if targets is None:
        targets = cmp.targets.get((spec.label, seed))
    floor = (cmp.base.get("memorization") or 0.0) if floor is None else floor
    cfg = config.train_config(spec, lr, seed, run_dir, targets, records_path or cmp.records_path,
                              floor, model=model)
    evaluator = cmp.evaluator(run_dir / "samples", records)

    def callback(model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        if progress is not None:
            progress.epoch(epoch)
        return evaluator(model, tokenizer, epoch)

    trained = train(cfg, epoch_callback=callback)
    metrics = read_metrics(run_dir)
    if len(metrics) < config.epochs and not should_stop(metrics, patience=config.stop_patience,
                                                        at=config.stop_at, above=floor):
        raise MixsdError(f"{run_dir}: {len(metrics)} evaluated epoch(s) of {config.epochs}; "
                         "remove the run folder to train it again")
    run = make_run(spec.kind, spec.mix_lambda, lr, seed, metrics, base_scores=cmp.base["scores"],
                   target_nll=cmp.nll.get(targets.stem) if targets else None,
                   name=name or f"{spec.name} lr={lr:g} seed={seed}",
                   label=spec.label, guidance=cfg.guidance, select_floor=floor,
                   **({"mix_unit": spec.mix_unit} if spec.mix_unit != "token" else {}))
    cmp.describe(run, run_dir, records)
    # This call's seconds plus the training seconds earlier calls recorded (a resumed run).
    earlier_s = recorded_train_seconds(run_dir) - trained.wall_s
    run["seconds"] = round(time.perf_counter() - start + max(earlier_s, 0.0), 3)
    atomic_write_json(entry_path, run)
    return run


# -- the grid -----------------------------------------------------------------------------
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
    return make_results(cmp.base, runs, config=config.to_dict(), model=config.model,
                        corpus=config.corpus, target_nll=cmp.nll,
                        equal_memorization={"level": level, "retention_mean": at_level},
                        targets=target_summaries(summaries), disk_bytes=folder_bytes(cmp.out),
                        wall_s=round(time.perf_counter() - start, 3), **extra)


def run_compare(config: CompareConfig) -> dict[str, Any]:
    """Run the whole comparison; return a summary (``results``, ``results_path``,
    ``report_path``, ``wall_s``). With ``rounds > 1``: continual injection
    (:func:`mixsd.experiment_rounds.run_rounds`). With ``quiet`` the console shows one bar
    and everything else goes to ``OUT/log.txt``."""
    from mixsd.console import quiet_console

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    check_out_dir(config, out)
    with quiet_console(out / "log.txt", config.quiet) as terminal:
        if config.rounds > 1:
            from mixsd.experiment_rounds import run_rounds

            return run_rounds(config, out, terminal)
        return _run_grid(config, out, terminal)


def _run_grid(config: CompareConfig, out: Path, terminal: Any) -> dict[str, Any]:
    from mixsd.console import GridBar
    from mixsd.editing.compare import run_memit

    start = time.perf_counter()
    write_run_info(out, config, status="running")
    grid = config.grid()
    bar = GridBar(total=len(grid), file=terminal)
    cmp = prepare(config, out, bar)
    runs = []
    for spec, lr, seed in grid:
        if spec.kind == "memit":
            bar.start(f"{spec.name} seed={seed}")
            runs.append(run_memit(cmp, spec, seed))
        else:
            bar.start(f"{spec.name} lr={lr:g} seed={seed}")
            runs.append(run_one(cmp, spec, lr, seed, progress=bar))
        bar.done()
    bar.close()
    return finish(config, out, collect_results(cmp, runs, start), start)


def finish(config: CompareConfig, out: Path, results: dict[str, Any], start: float
           ) -> dict[str, Any]:
    """Write results.json and the report; the summary of :func:`run_compare`."""
    from mixsd.evaluation.results import write_results

    results_path = write_results(out / "results.json", results)
    report_path = None
    if config.report:
        from mixsd.report import write_report

        report_path = write_report([results_path], out / "report")
    wall_s = time.perf_counter() - start
    write_run_info(out, config, status="complete", wall_s=round(wall_s, 3))
    return {"results": results, "results_path": results_path, "report_path": report_path,
            "wall_s": wall_s}
