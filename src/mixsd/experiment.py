"""The experiment runner behind ``mixsd compare`` and ``mixsd demo``.

One command runs every method on one corpus with identical evaluation (method.md,
"Baselines" and "Measurements"):

    corpus -> targets (per method) -> training with per-epoch evaluation -> first-peak
    selection and equal-memorisation comparison -> analyses (target NLL, Fisher
    displacement) -> results.json -> report

Every stage leaves its artifact under ``OUT/`` and is reused when it already exists, so a
killed run resumes where it stopped:

    OUT/corpus/train.jsonl          the injected facts (and OUT/corpus/eval.jsonl, other splits)
    OUT/base.json                   the untouched model's scores
    OUT/targets/LABEL.jsonl         one targets file per target-based method
    OUT/analysis/nll.json           mean per-token NLL of each target file under the base model
    OUT/runs/LABEL-lrLR-sSEED/      a training run (epoch-K/ checkpoints, metrics.jsonl, entry.json)
    OUT/runs/memit-sSEED/           an edit (epoch-1/ the edited model, edit.json, entry.json)
    OUT/results.json, OUT/report/   the comparison
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.config import StageConfig, inherit, option
from mixsd.errors import ConfigError, MixsdError
from mixsd.evaluation.runner import EvalConfig
from mixsd.io import atomic_write_json, write_run_info
from mixsd.methods import DEFAULT_METHODS, MethodSpec, parse_method
from mixsd.records import KnowledgeRecord, read_records, write_records
from mixsd.registry import REGISTRIES, default_model, model_defaults
from mixsd.targets.config import TargetsConfig
from mixsd.training.config import TrainConfig
from mixsd.training.keep import KeepPolicy


@dataclass
class CompareConfig(StageConfig):
    """The grid of a comparison: methods x learning rates x seeds on one model and corpus.

    A field passed on to a stage is that stage's field (:func:`mixsd.config.inherit`: its
    help, range and default, and a dotted key such as ``targets.max_new_tokens``); where the
    comparison's default differs, the ``default=`` below says so."""

    model: str = inherit(TrainConfig, "model", default_factory=default_model,
                         also=("targets.model", "eval.model"))
    corpus: str = option(help="a registered corpus (the toy world's injection corpus: toy), a "
                         "records JSONL file, or a folder written by `mixsd corpus` (train.jsonl "
                         "+ eval splits)", default_factory=lambda: model_defaults(default_model()).corpus or "")
    methods: list[str] = option(default_factory=lambda: list(DEFAULT_METHODS),
                                help="methods: sft, sd0, mixsd:LAMBDA, opsd, memit; /UNIT picks "
                                "mixsd's mixing unit (mixsd:0.5/word, mixsd:0.5/span); @GUIDANCE "
                                "selects a method's expert guidance preset")
    epochs: int = inherit(TrainConfig, "epochs", note=" of every run")
    lr: list[float] = option(default_factory=lambda: [1e-5], help="learning rates", min=0)
    method_lr: list[str] = option(default_factory=list, help="learning rates of one method, "
                                  "METHOD=LR (repeat for several: opsd=1e-2,opsd=3e-2); "
                                  "METHOD is a method spec (mixsd:0.5@toy-own) or a kind "
                                  "(opsd); methods not named use --lr")
    seeds: list[int] = option(default_factory=lambda: [0], help="run seeds: training order, "
                              "LoRA initialisation, OPSD rollouts (and the targets' coins, see "
                              "--targets-seed)", min=0)
    targets_seed: int | None = option(None, "seed of the targets' coins (MixSD mixing, "
                                      "retries); default: each run's seed, one targets file "
                                      "per seed", min=0)
    corpus_seed: int = option(0, "seed of the toy corpus (which facts are injected); the "
                              "same facts for every run seed", min=0)
    out: str = option("runs/compare", "output folder (re-running resumes)")
    # The comparison's default: the model's own suites (registered with its alias, else none).
    suites: list[str] = inherit(EvalConfig, "suite", default_factory=list,
                                note="; default: the model's registered suites (toy for the "
                                "toy model), none otherwise")
    guidance: str = inherit(TargetsConfig, "guidance", default="auto",
                            also=("train.guidance", "eval.guidance"),
                            note="; auto: the model's registered preset (toy for the toy "
                            "model), knowledge otherwise")
    extractor: str = inherit(TargetsConfig, "extractor", also=("eval.extractor",),
                             note="; also scores the answers of evaluation")
    n_facts: int | None = option(None, "facts injected: the toy corpus's size (default 100), "
                                 "or the first N training records of a records corpus "
                                 "(default: all)", min=1)
    eval_items: int = inherit(EvalConfig, "toy_items")
    batch_size: int = inherit(TrainConfig, "batch_size")
    # Generation is batched wider than training: one batch of targets and of evaluation.
    eval_batch_size: int = inherit(EvalConfig, "batch_size", default=64,
                                   also=("targets.batch_size",),
                                   note="; also the records advanced together by targets")
    # Short facts: 64 tokens holds every answer of the toy world and of the shipped corpora.
    max_new_tokens: int = inherit(TargetsConfig, "max_new_tokens", default=64,
                                  also=("train.max_new_tokens", "eval.max_new_tokens"),
                                  note="; also of answers and OPSD rollouts")
    max_retries: int = inherit(TargetsConfig, "max_retries")
    temperature: float = inherit(TargetsConfig, "temperature")
    top_k: int = inherit(TargetsConfig, "top_k", also=("train.top_k",),
                         note="; also opsd's loss: the teacher's top-k tokens")
    lora: bool = inherit(TrainConfig, "lora")
    include_unverified: bool = inherit(TrainConfig, "include_unverified")
    warmup_steps: int = inherit(TrainConfig, "warmup_steps")
    keep: str = inherit(TrainConfig, "keep")
    stop_patience: int = inherit(TrainConfig, "stop_patience",
                                 note="; the comparison's stop_metric is memorization")
    stop_at: float | None = inherit(TrainConfig, "stop_at", min=0, max=1)
    # Two rollouts per prompt: OPSD's cost at the toy world's calibrated learning rate.
    opsd_rollouts: int = inherit(TrainConfig, "rollouts", default=2)
    divergence: str = inherit(TrainConfig, "divergence")
    fisher_examples: int = option(200, "held-out examples of the Fisher (0 = no Fisher)", min=0)
    equal_memorization: float = option(0.8, "memorisation level of the equal-memorisation "
                                       "comparison: each run at its first epoch at or above "
                                       "it; runs that never get there are listed as such",
                                       min=0, max=1)
    rounds: int = option(1, "continual injection: split the facts into N rounds trained one "
                         "after another, each from the previous round's selected checkpoint "
                         "(see mixsd.experiment_rounds)", min=1)
    quiet: bool = option(True, "one progress bar on the console; library logs, warnings and "
                         "the trainer's output go to OUT/log.txt")
    edit_config: str = option("", "YAML file of `mixsd edit` values (EditConfig) for the memit "
                              "method (default: its defaults)")
    device: str = inherit(TrainConfig, "device", also=("targets.device", "eval.device"))
    report: bool = option(True, "write the Markdown/HTML report")

    def validate(self) -> None:
        """Every value, before any model loads: the stage values by the stages' own checks,
        the methods (and their @GUIDANCE), the suites and the memit method's edit config."""
        from mixsd.answers import check_extractor
        from mixsd.evaluation.suites import check_suites
        from mixsd.prompts import check_guidance

        super().validate()
        KeepPolicy.parse(self.keep)
        check_extractor(self.extractor)
        check_guidance(self.guidance)
        specs = self.method_specs()
        if len({s.label for s in specs}) != len(self.methods):
            raise ConfigError("methods: each method may appear once (flag --methods)")
        for spec in specs:
            check_guidance(spec.guidance, key=f"methods: {spec.name}: guidance", flag="--methods")
        self.method_lrs()
        if self.suites:
            check_suites(self.suites, flag="--suites")
        if any(s.kind == "memit" for s in specs):
            from mixsd.editing.compare import memit_config

            memit_config(self, 0)

    def method_lrs(self) -> dict[str, list[float]]:
        """``--method-lr`` as {method spec or kind: [lr, ...]} (validated)."""
        found: dict[str, list[float]] = {}
        for item in self.method_lr:
            key, sep, value = item.partition("=")
            try:
                lr = float(value)
            except ValueError:
                lr = -1.0
            if not sep or lr < 0:
                raise ConfigError(f"method_lr: expected METHOD=LR (e.g. opsd=1e-2), got "
                                  f"{item!r} (flag --method-lr)")
            known = {s.name for s in self.method_specs()} | {s.kind for s in self.method_specs()}
            if key.strip() not in known:
                raise ConfigError(f"method_lr: {key.strip()!r} is none of the methods "
                                  f"{', '.join(self.methods)} (flag --method-lr)")
            found.setdefault(key.strip(), []).append(lr)
        return found

    def lrs_for(self, spec: MethodSpec) -> list[float | None]:
        """The learning rates of one method: its own (by spec, then by kind), else ``lr``;
        an edit (memit) has none."""
        if spec.kind == "memit":
            return [None]
        own = self.method_lrs()
        return list(own.get(spec.name) or own.get(spec.kind) or self.lr)

    def method_specs(self) -> list[MethodSpec]:
        if not self.methods:
            raise ConfigError("methods must not be empty (flag --methods)")
        return [parse_method(m) for m in self.methods]

    def resolved_guidance(self) -> str:
        from mixsd.prompts import resolve_guidance_name

        return resolve_guidance_name(self.guidance, self.model)

    def resolved_suites(self) -> list[str]:
        return list(self.suites) or list(model_defaults(self.model).suites)


# Fields that may change between two invocations on the same --out: they add runs or change
# only presentation; every other field decides artifacts that are reused.
EXTENDABLE_FIELDS = ("methods", "lr", "method_lr", "seeds", "out", "report", "device",
                     "eval_batch_size", "equal_memorization", "quiet", "keep")


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


# -- stages ------------------------------------------------------------------------------
def prepare_corpus(config: CompareConfig, out: Path) -> tuple[Path, list[KnowledgeRecord]]:
    """Write the training records to ``OUT/corpus/train.jsonl``; return it and every record
    (the training ones plus evaluation splits) for the memorisation suites."""
    corpus_dir = out / "corpus"
    train_path = corpus_dir / "train.jsonl"
    named = REGISTRIES.corpora.find(config.corpus)
    if named is not None:
        if named.model is not None and config.model != named.model:
            raise ConfigError(f"corpus {config.corpus!r} is made for the {named.model} model "
                              "(flag --corpus)")
        records = named.records(config.n_facts, config.corpus_seed)
        if not train_path.exists():
            write_records(train_path, records)
        return train_path, records
    source = Path(config.corpus)
    if source.is_dir():
        files = sorted(source.glob("*.jsonl"))
        if not (source / "train.jsonl").exists():
            raise MixsdError(f"{source}: a corpus folder needs train.jsonl (flag --corpus)")
        records = [r for f in files for r in read_records(f)]
        train = read_records(source / "train.jsonl")
    else:
        records = read_records(source)
        train = [r for r in records if r.split in (None, "", "train")]
    if not train:
        raise MixsdError(f"{source}: no training records (split empty or 'train')")
    if config.n_facts is not None and config.n_facts < len(train):
        # The first N facts, and only the evaluation records about them (same subject).
        train = train[:config.n_facts]
        subjects = {r.subject for r in train if r.subject}
        kept = {r.id for r in train}
        records = [r for r in records if r.id in kept or (
            r.split not in (None, "", "train") and r.subject in subjects)]
    if not train_path.exists():
        write_records(train_path, train)
    return train_path, records


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


def _model_id(config: CompareConfig) -> str:
    from mixsd.models import resolve_model_path

    return resolve_model_path(config.model)


def targets_seed(config: CompareConfig, spec: MethodSpec, run_seed: int) -> int | None:
    """The seed of a method's targets for one run: ``targets_seed``, else the run's seed;
    None for SFT, whose targets (y*) have no coins."""
    if spec.kind == "sft":
        return None
    return config.targets_seed if config.targets_seed is not None else run_seed


def targets_path(config: CompareConfig, spec: MethodSpec, run_seed: int, out: Path) -> Path:
    """``OUT/targets/LABEL.jsonl`` (one file for every seed) or ``LABEL-sSEED.jsonl``."""
    seed = targets_seed(config, spec, run_seed)
    if seed is None or config.targets_seed is not None:
        return out / "targets" / f"{spec.label}.jsonl"
    return out / "targets" / f"{spec.label}-s{seed}.jsonl"


def build_method_targets(config: CompareConfig, spec: MethodSpec, records_path: Path, out: Path,
                         model: Any, tokenizer: Any, run_seed: int = 0) -> Path:
    """The targets file of a target-based method for a run seed (:func:`targets_path`)."""
    from mixsd.targets import TargetsConfig, run_targets

    path = targets_path(config, spec, run_seed, out)
    if path.exists():
        return path
    cfg = TargetsConfig(model=config.model, method=spec.targets_method,
                        mix_lambda=spec.mix_lambda if spec.mix_lambda is not None else 0.0,
                        mix_unit=spec.mix_unit,
                        temperature=config.temperature, top_k=config.top_k,
                        max_new_tokens=config.max_new_tokens, max_retries=config.max_retries,
                        seed=targets_seed(config, spec, run_seed) or 0,
                        batch_size=config.eval_batch_size,
                        guidance=spec.guidance or config.resolved_guidance(),
                        extractor=config.extractor, device=config.device, progress=False)
    run_targets(cfg, records_path, path, model=model, tokenizer=tokenizer)
    return path


TARGET_FIELDS = ("records", "verified", "unverified", "max_length", "mean_attempts",
                 "mean_naive_token_fraction", "mean_num_tokens", "generated_tokens", "wall_s")


def target_summaries(targets: dict[str, list[Path]]) -> dict[str, dict[str, Any]]:
    """What each method's targets hold (records, verified, attempts, naive fraction, seconds),
    from the summary each targets run wrote beside its file; with one file per seed, the mean
    over the files (``files`` says how many; ``wall_s`` is their sum)."""
    out = {}
    for label, paths in targets.items():
        rows = []
        for path in dict.fromkeys(paths):
            sidecar = Path(str(path) + ".run.json")
            info = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else {}
            rows.append(info.get("summary") or {})
        entry: dict[str, Any] = {}
        for key in TARGET_FIELDS:
            values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            entry[key] = (None if not values else sum(values) if key == "wall_s"
                          else sum(values) / len(values))
        entry["files"] = len(rows)
        out[label] = entry
    return out


def folder_bytes(folder: Path) -> int:
    """Bytes on disk under ``folder`` (what a comparison leaves behind)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def target_nlls(config: CompareConfig, out: Path, files: list[Path], model: Any,
                tokenizer: Any) -> dict[str, float]:
    """Mean per-token NLL of each targets file under the base model, keyed by the file's stem
    (``analysis/nll.json``)."""
    from mixsd.analysis.nll import load_pairs, target_nll

    path = out / "analysis" / "nll.json"
    known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    for file in dict.fromkeys(files):
        if file.stem not in known:
            pairs = load_pairs(file, include_unverified=config.include_unverified)
            known[file.stem] = target_nll(model, tokenizer, pairs,
                                          guidance=config.resolved_guidance(),
                                          batch_size=config.eval_batch_size,
                                          name=file.stem).mean_nll
            atomic_write_json(path, known)
    return known


@dataclass
class FisherReference:
    """The base model's diagonal Fisher and weights, computed once when first needed."""

    config: CompareConfig
    model: Any
    tokenizer: Any
    suites: dict[str, Any]
    _fisher: Any = None
    _theta0: Any = None

    def displacement(self, checkpoint: Path) -> dict[str, Any] | None:
        from mixsd.analysis.fisher import (
            empirical_fisher,
            fisher_displacement,
            load_checkpoint_parameters,
            parameters_of,
            suite_examples,
        )

        if self.config.fisher_examples == 0 or not self.suites:
            return None
        if self._fisher is None:
            examples = suite_examples(self.suites, self.tokenizer,
                                      max_examples=self.config.fisher_examples)
            self._fisher = empirical_fisher(self.model, examples)
            self._theta0 = parameters_of(self.model)
        theta = load_checkpoint_parameters(checkpoint, _model_id(self.config))
        return fisher_displacement(self._fisher, self._theta0, theta)


def train_config(config: CompareConfig, spec: MethodSpec, lr: float, seed: int, run_dir: Path,
                 targets: Path | None, records_path: Path, base_memorization: float = 0.0
                 ) -> Any:
    from mixsd.training import TrainConfig

    common = dict(model=config.model, out=str(run_dir), epochs=config.epochs, lr=lr,
                  batch_size=config.batch_size, seed=seed, lora=config.lora,
                  warmup_steps=config.warmup_steps, stop_patience=config.stop_patience,
                  stop_at=config.stop_at, stop_above=base_memorization,
                  guidance=spec.guidance or
                  config.resolved_guidance(), device=config.device,
                  include_unverified=config.include_unverified, keep=config.keep,
                  progress=not config.quiet)
    if spec.kind == "opsd":
        return TrainConfig(method=spec.train_method, data=str(records_path), rollouts=config.opsd_rollouts,
                           max_new_tokens=config.max_new_tokens, top_k=config.top_k,
                           divergence=config.divergence, **common)
    return TrainConfig(method=spec.train_method, targets=str(targets), **common)


def run_one(config: CompareConfig, spec: MethodSpec, lr: float, seed: int, *, out: Path,
            targets: Path | None, records_path: Path, records: list[KnowledgeRecord],
            suites: dict[str, Any], base: dict[str, Any], base_model: Any, tokenizer: Any,
            nll: dict[str, float], fisher: FisherReference, progress: Any = None,
            run_dir: Path | None = None, model: Any = None, floor: float | None = None,
            name: str | None = None) -> dict[str, Any]:
    """Train one (method, lr, seed) with per-epoch evaluation; its ``runs`` entry.

    The entry is cached in ``RUN_DIR/entry.json``; training itself resumes from its last
    complete epoch. ``progress`` (a :class:`mixsd.console.GridBar`) hears of every epoch.
    ``run_dir``, ``model`` (the model to start from, default ``config.model``), ``floor``
    (the memorisation a peak must beat, default the base model's) and ``name`` serve
    continual injection (:mod:`mixsd.experiment_rounds`)."""
    from mixsd.evaluation.buckets import buckets_from_samples, injected_names
    from mixsd.evaluation.callback import make_epoch_evaluator
    from mixsd.evaluation.results import make_run
    from mixsd.training import read_metrics, train
    from mixsd.training.checkpoints import should_stop
    from mixsd.training.run import recorded_train_seconds

    run_dir = run_dir or out / "runs" / f"{spec.label}-lr{lr:g}-s{seed}"
    entry_path = run_dir / "entry.json"
    if entry_path.exists():
        return json.loads(entry_path.read_text(encoding="utf-8"))
    start = time.perf_counter()
    evaluator = make_epoch_evaluator(
        suites, records, base_scores=base["scores"], base_model=base_model,
        extractor=config.extractor, max_new_tokens=config.max_new_tokens,
        guidance=config.resolved_guidance(), batch_size=config.eval_batch_size,
        samples_dir=run_dir / "samples")
    floor = (base.get("memorization") or 0.0) if floor is None else floor
    cfg = train_config(config, spec, lr, seed, run_dir, targets, records_path, floor)
    if model is not None:
        cfg.model = str(model)

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
    run = make_run(spec.kind, spec.mix_lambda, lr, seed, metrics, base_scores=base["scores"],
                   target_nll=nll.get(targets.stem) if targets else None,
                   name=name or f"{spec.name} lr={lr:g} seed={seed}",
                   label=spec.label, guidance=cfg.guidance, select_floor=floor,
                   **({"mix_unit": spec.mix_unit} if spec.mix_unit != "token" else {}))
    run["error_buckets"] = buckets_from_samples(
        run_dir / "samples", run["selected_epoch"], suites, base_samples_dir=out / "base_samples",
        names=injected_names(records))
    checkpoint = run_dir / f"epoch-{run['selected_epoch']}"
    run["fisher"] = fisher.displacement(checkpoint) if checkpoint.exists() else None
    # This call's seconds plus the training seconds earlier calls recorded (a resumed run).
    earlier_s = recorded_train_seconds(run_dir) - trained.wall_s
    run["seconds"] = round(time.perf_counter() - start + max(earlier_s, 0.0), 3)
    atomic_write_json(entry_path, run)
    return run


@dataclass
class Setup:
    """What every run of a comparison shares: the corpus, the base model and its scores."""

    records_path: Path
    records: list[KnowledgeRecord]
    model: Any
    tokenizer: Any
    suites: dict[str, Any]
    base: dict[str, Any]


def prepare(config: CompareConfig, out: Path) -> Setup:
    """Corpus, base model, retention suites and the base model's scores (cached)."""
    from mixsd.evaluation.callback import make_epoch_evaluator
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import fingerprint_path
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer

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
                                model_fingerprint=fingerprint_path(_model_id(config)))
    base_eval = make_epoch_evaluator(suites, records, extractor=config.extractor,
                                     max_new_tokens=config.max_new_tokens, guidance=guidance,
                                     batch_size=config.eval_batch_size,
                                     samples_dir=out / "base_samples")
    base = evaluate_base(out, model, tokenizer, base_eval, suite_info)
    return Setup(records_path, records, model, tokenizer, suites, base)


def run_grid(config: CompareConfig) -> list[tuple[MethodSpec, float | None, int]]:
    """Every (method, learning rate, seed) of the comparison, seed by seed: a long grid
    stopped early (every run is cached) already holds a complete comparison of its first
    seeds."""
    return [(s, lr, seed) for seed in config.seeds for s in config.method_specs()
            for lr in config.lrs_for(s)]


def build_all_targets(config: CompareConfig, setup: Setup, out: Path, bar: Any
                      ) -> dict[tuple[str, int], Path]:
    """The targets file of every (target-based method, run seed): {(label, seed): path}."""
    targets: dict[tuple[str, int], Path] = {}
    for spec in config.method_specs():
        if spec.kind in ("opsd", "memit"):
            continue
        for seed in config.seeds:
            path = targets_path(config, spec, seed, out)
            if path not in targets.values():
                bar.start(f"targets {path.stem}")
            targets[(spec.label, seed)] = build_method_targets(
                config, spec, setup.records_path, out, setup.model, setup.tokenizer, seed)
    return targets


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
        return _run_compare(config, out, terminal)


def _run_compare(config: CompareConfig, out: Path, terminal: Any) -> dict[str, Any]:
    from mixsd.console import GridBar
    from mixsd.evaluation.results import make_results, retention_at_equal_memorization

    start = time.perf_counter()
    write_run_info(out, config, status="running")
    grid = run_grid(config)
    bar = GridBar(total=len(grid), file=terminal)
    bar.start("base model")
    setup = prepare(config, out)
    targets = build_all_targets(config, setup, out, bar)
    nll = target_nlls(config, out, list(targets.values()), setup.model, setup.tokenizer)
    fisher = FisherReference(config, setup.model, setup.tokenizer, setup.suites)
    shared = dict(out=out, records_path=setup.records_path, records=setup.records,
                  suites=setup.suites, base=setup.base, base_model=setup.model,
                  tokenizer=setup.tokenizer, fisher=fisher)
    runs = []
    for spec, lr, seed in grid:
        if spec.kind == "memit":
            from mixsd.editing.compare import run_memit

            bar.start(f"{spec.name} seed={seed}")
            runs.append(run_memit(config, spec, seed, **shared))
        else:
            bar.start(f"{spec.name} lr={lr:g} seed={seed}")
            runs.append(run_one(config, spec, lr, seed, targets=targets.get((spec.label, seed)),
                                nll=nll, progress=bar, **shared))
        bar.done()
    bar.close()
    level, at_level = retention_at_equal_memorization(runs, config.equal_memorization)
    by_label: dict[str, list[Path]] = {}
    for (label, _), path in targets.items():
        by_label.setdefault(label, []).append(path)
    results = make_results(setup.base, runs, config=config.to_dict(), model=config.model,
                           corpus=config.corpus, target_nll=nll,
                           equal_memorization={"level": level, "retention_mean": at_level},
                           targets=target_summaries(by_label), disk_bytes=folder_bytes(out),
                           wall_s=round(time.perf_counter() - start, 3))
    return finish(config, out, results, start)


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


# -- the summary table ---------------------------------------------------------------------
def _fmt(value: Any, pattern: str = "{:.2f}") -> str:
    return "-" if value is None else pattern.format(value)


def results_table(results: dict[str, Any]) -> str:
    """A plain-text table of every run (one screen), as the CLI prints it; with several
    seeds, one row per method and learning rate (mean ± sd) and the equal-memorisation
    comparison instead."""
    from mixsd.evaluation.results import group_runs
    from mixsd.report.tables import equal_memorization_groups_table, groups_table, rounds_table

    if any(len(m) > 1 for m in group_runs(results["runs"]).values()):
        level = (results.get("equal_memorization") or {}).get("level") or 0.0
        tables = [groups_table(results["runs"]),
                  equal_memorization_groups_table(results["runs"], level), rounds_table(results)]
        return "\n\n".join(t.to_text() for t in tables if t is not None)
    suites = sorted(results["base"].get("scores", {}))
    at_level = (results.get("equal_memorization") or {}).get("retention_mean") or {}
    level = (results.get("equal_memorization") or {}).get("level")
    header = ["run", "ep", "memo", "para", *[f"{s.split(':')[-1][:10]}%" for s in suites],
              "ret%", f"ret%@m{_fmt(level)}", "tgtNLL", "fisher", "sec"]
    base = results["base"]
    rows = [["base model", "-", _fmt(base.get("memorization")), _fmt(base.get("paraphrase")),
             *[_fmt(base["scores"][s]) for s in suites], "100", "-", "-", "-", "-"]]
    for run in results["runs"]:
        fisher = (run.get("fisher") or {}).get("total")
        rows.append([run["name"], str(run["selected_epoch"]), _fmt(run["memorization"]),
                     _fmt(run["paraphrase"]),
                     *[_fmt((run["retention"] or {}).get(s), "{:.0f}") for s in suites],
                     _fmt(run["retention_mean"], "{:.0f}"),
                     _fmt(at_level.get(run["name"]), "{:.0f}"),
                     _fmt(run.get("target_nll"), "{:.3f}"), _fmt(fisher, "{:.3g}"),
                     _fmt(run.get("seconds"), "{:.0f}")])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths))) for r in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
