"""What every run of a comparison shares (:class:`Comparison`) and how it is prepared: the
corpus, the base model with its suites and scores, every targets folder, their NLL under the
base model and the Fisher reference.

    OUT/corpus/train.jsonl          the injected facts
    OUT/base.json                   the untouched model's scores (a keyed cache)
    OUT/targets/LABEL[-sSEED]/      one targets folder per target-based method (and run seed);
                                    an old comparison's LABEL[-sSEED].jsonl files are reused
    OUT/analysis/nll.json           mean per-token NLL of each targets folder under the base model (keyed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.analysis.fisher import FisherReference
from mixsd.analysis.nll import NLLSettings, cached_target_nlls
from mixsd.compare.config import CompareConfig
from mixsd.compare.keys import base_fields, model_fields, targets_path
from mixsd.compare.plan import targets_config
from mixsd.corpora.load import Corpus, load_corpus
from mixsd.editing.memit import check_subjects
from mixsd.evaluation.base import evaluate_base
from mixsd.evaluation.buckets import buckets_from_samples, injected_names
from mixsd.evaluation.callback import held_out_prompts, make_epoch_evaluator
from mixsd.evaluation.config import lmeval_options
from mixsd.evaluation.drift import DriftReference
from mixsd.evaluation.general import prepare_suites
from mixsd.evaluation.retention import fingerprint_path
from mixsd.evaluation.suites import get_suites
from mixsd.models import free_accelerator_memory, load_model_and_tokenizer, model_key
from mixsd.records import KnowledgeRecord, targets_name, write_records
from mixsd.targets.run import run_targets


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
            self.drift = DriftReference.from_model(self.model, self.tokenizer,
                                                   held_out_prompts(self.suites),
                                                   batch_size=self.config.eval_batch_size)
        return self.drift

    def park_base(self) -> None:
        """Move the base model off the accelerator while runs train (their drift compares
        against :meth:`drift_reference`, the Fisher is computed first): the training process
        holds one model, not two. Nothing moves on the CPU."""
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
        """Bring the base model back to its device (an edit, or OPSD's teacher, works on it)."""
        if self.base_device is not None:
            self.model.to(self.base_device)
            self.base_device = None

    def evaluator(self, samples_dir: Path, records: list[KnowledgeRecord] | None = None,
                  *, against_base: bool = True) -> Any:
        """The per-epoch evaluator of a run: the comparison's suites, memorisation of
        ``records`` (default the comparison's), sample logs under ``samples_dir``; with
        ``against_base`` also retention and drift against the base model (every run; not the
        base model's own evaluation)."""
        c = self.config
        vs_base = dict(base_scores=self.base["scores"], drift_reference=self.drift_reference()) \
            if against_base else {}
        return make_epoch_evaluator(
            self.suites, self.records if records is None else records, extractor=c.extractor,
            max_new_tokens=c.max_new_tokens, guidance=c.resolved_guidance(),
            batch_size=c.eval_batch_size, samples_dir=samples_dir,
            retention_levels=c.retention_levels if against_base else (),
            epochs=c.train.epochs, chat=c.chat_options(), **vs_base)

    def describe(self, run_dir: Path, epoch: int,
                 records: list[KnowledgeRecord] | None = None) -> dict[str, Any]:
        """The selected ``epoch``'s error buckets and Fisher displacement (``error_buckets``,
        ``fisher``: the run entry's fields)."""
        buckets = buckets_from_samples(
            run_dir / "samples", epoch, self.suites, base_samples_dir=self.out / "base_samples",
            names=injected_names(self.records if records is None else records))
        checkpoint = run_dir / f"epoch-{epoch}"
        return {"error_buckets": buckets,
                "fisher": self.fisher.displacement(checkpoint) if checkpoint.exists() else None}


def load_compare_corpus(config: CompareConfig) -> Corpus:
    """The comparison's corpus; a memit method needs every fact's subject (checked here, before
    the model loads)."""
    corpus = load_corpus(config.corpus, model=config.model, n_facts=config.n_facts,
                         corpus_seed=config.corpus_seed, splits=config.eval_splits)
    if any(s.kind == "memit" for s in config.method_specs()):
        check_subjects(corpus.train)
    return corpus


def prepare_corpus(config: CompareConfig, out: Path, corpus: Corpus | None = None
                   ) -> tuple[Path, list[KnowledgeRecord]]:
    """Write the training records to ``OUT/corpus/train.jsonl`` (kept when there); return it
    and every record (the training ones plus evaluation splits) for the memorisation suites.
    ``corpus`` is the loaded corpus (loaded here when not given)."""
    corpus = corpus if corpus is not None else load_compare_corpus(config)
    path = out / "corpus" / "train.jsonl"
    if not path.exists():
        write_records(path, corpus.train)
    return path, corpus.records


def build_all_targets(cmp: Comparison, bar: Any) -> dict[tuple[str, int], Path]:
    """The targets folder of every (target-based method, run seed): {(label, seed): path}.
    A complete folder (or an old single file) is reused; a cut one resumes."""
    config, targets = cmp.config, {}
    for spec in config.method_specs():
        if spec.kind in ("opsd", "memit"):
            continue
        for seed in config.seeds:
            path = targets_path(config, spec, seed, cmp.out)
            # Once per folder: SFT's (and a fixed --targets-seed's) is every seed's.
            if path not in targets.values():
                bar.start(f"targets {targets_name(path)}")
                if path.suffix != ".jsonl":  # an old comparison's file is reused as it is
                    run_targets(targets_config(config, spec, seed), cmp.records_path, path,
                                model=cmp.model, tokenizer=cmp.tokenizer)
            targets[(spec.label, seed)] = path
    return targets


def _load_dtype(config: CompareConfig) -> str:
    """The dtype of the comparison's base model (targets, evaluation): ``auto`` (bf16 on a GPU
    that has it) unless training asks for pure weights of one dtype."""
    return config.train.dtype if config.train.dtype in ("float32", "bfloat16") else "auto"


def _suites(config: CompareConfig, model: Any, tokenizer: Any) -> tuple[dict, dict]:
    """The retention suites and what preparing them recorded (known sets, sizes)."""
    names = config.resolved_suites()
    suites = get_suites(names, **config.eval.plugin_options(),
                        guidance=config.resolved_guidance(), extractor=config.extractor,
                        chat=config.chat_options(), **lmeval_options(config.eval)) \
        if names else {}
    info = prepare_suites(suites, model, tokenizer, batch_size=config.eval_batch_size,
                          model_fingerprint=fingerprint_path(
                              model_key(config.model_id(), config.revision)))
    return suites, info


def prepare(config: CompareConfig, out: Path, bar: Any, started: Any = None) -> Comparison:
    """Everything the runs share: the corpus, the base model, its retention suites and scores
    (cached), every targets file, their NLL under the base model (cached) and the Fisher
    reference (computed when a first run needs it). ``started()`` runs once the corpus and
    the model have loaded, before anything is written (it records the run as started)."""
    bar.start("base model")
    corpus = load_compare_corpus(config)
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device,
                                                dtype=_load_dtype(config),
                                                **config.hub_options())
    if started is not None:
        started()
    records_path, records = prepare_corpus(config, out, corpus)
    suites, suite_info = _suites(config, model, tokenizer)
    cmp = Comparison(config, out, records_path, records, model, tokenizer, suites, base={})
    cmp.base = evaluate_base(out, model, tokenizer,
                             cmp.evaluator(out / "base_samples", against_base=False),
                             suite_info, key=base_fields(config))
    cmp.targets = build_all_targets(cmp, bar)
    settings = NLLSettings(config.resolved_guidance(), config.train.include_unverified,
                           config.eval_batch_size, config.chat_options())
    cmp.nll = cached_target_nlls(out / "analysis" / "nll.json", list(cmp.targets.values()),
                                 model, tokenizer, settings, model_fields(config))
    cmp.fisher = FisherReference(model, tokenizer, suites, max_examples=config.fisher_examples,
                                 base_model_path=config.model_id())
    return cmp
