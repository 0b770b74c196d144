"""``CompareConfig``: the grid of a comparison (``mixsd compare``, ``mixsd demo``).

It holds the stage configs (``targets``, ``train``, ``eval``); how one run of the grid
changes them is the plan's business (:mod:`mixsd.compare.plan`); the loop that runs the
plans is :mod:`mixsd.compare.loop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixsd.answers import check_extractor
from mixsd.config import StageConfig, inherit, option, stage_config
from mixsd.editing.config import EditConfig, edit_config_with
from mixsd.errors import ConfigError
from mixsd.evaluation.config import LMEVAL_FIELDS, EvalConfig
from mixsd.methods import DEFAULT_METHODS, MethodSpec, parse_method, parse_method_lrs
from mixsd.models import hub_options, resolve_model_path
from mixsd.prompts import chat_options, check_guidance, resolve_guidance_name
from mixsd.registry import default_model, model_defaults
from mixsd.targets.config import TargetsConfig
from mixsd.training.config import TrainConfig

# The stage keys the comparison has always had as flat keys (flags, config.yaml, results.json).
TARGETS_FLAT = ("max_retries", "temperature", "verify_entities", "verify_round_trip",
                "retry_temperature")
TRAIN_FLAT = ("epochs", "batch_size", "lora", "lora_r", "lora_alpha", "grad_accum",
              "lr_scheduler", "dtype", "gradient_checkpointing", "deepspeed", "fsdp",
              "fsdp_config", "report_to", "logging_steps", "save_only_model",
              "eval_from_checkpoint", "trainer_args", "include_unverified", "warmup_steps",
              "keep", "stop_patience", "stop_at", "divergence")


def _targets() -> TargetsConfig:
    return TargetsConfig(progress=False)


def _train() -> TrainConfig:
    # Two rollouts per prompt: OPSD's cost at the toy world's calibrated learning rate.
    return TrainConfig(rollouts=2)


def _eval() -> EvalConfig:
    # The comparison's default suites: the model's own (registered with its alias, else none).
    return EvalConfig(suite=[])


@dataclass
class CompareConfig(StageConfig):
    """The grid of a comparison: methods x learning rates x seeds on one model and corpus.

    The stages' knobs live in their own configs, ``targets``, ``train`` and ``eval``, which
    each run's plan changes with :func:`dataclasses.replace` (:mod:`mixsd.compare.plan`).
    They answer to dotted keys (``train.weight_decay``) and, where the comparison has always
    had one, to a flat key (``epochs``, ``opsd_rollouts``, ``suites``, ``eval_items``). A
    value several stages share is the comparison's own field (:func:`mixsd.config.inherit`);
    where the comparison's default differs from the stage's, the ``default=`` says so."""

    model: str = inherit(TrainConfig, "model", default_factory=default_model,
                         also=("targets.model", "eval.model"))
    corpus: str = option(help="a registered corpus (the toy world's injection corpus: toy), a "
                         "records JSONL file, or a folder written by `mixsd corpus` (train.jsonl "
                         "+ eval splits)",
                         default_factory=lambda: model_defaults(default_model()).corpus or "")
    methods: list[str] = option(default_factory=lambda: list(DEFAULT_METHODS),
                                help="methods: sft, sd0, mixsd:LAMBDA, opsd, memit; /UNIT picks "
                                "mixsd's mixing unit (mixsd:0.5/word, mixsd:0.5/span); @GUIDANCE "
                                "selects a method's expert guidance preset")
    lr: list[float] = option(default_factory=lambda: [1e-5], help="learning rates", above=0)
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
    # -- values several stages share ---------------------------------------------------
    guidance: str = inherit(TargetsConfig, "guidance", default="auto",
                            also=("train.guidance", "eval.guidance"),
                            note="; auto: the model's registered preset (toy for the toy "
                            "model), knowledge otherwise")
    chat_template_kwargs: dict[str, Any] = inherit(
        TargetsConfig, "chat_template_kwargs",
        also=("train.chat_template_kwargs", "eval.chat_template_kwargs"))
    system_prompt: str | None = inherit(TargetsConfig, "system_prompt",
                                        also=("train.system_prompt", "eval.system_prompt"))
    extractor: str = inherit(TargetsConfig, "extractor", also=("eval.extractor",),
                             note="; also scores the answers of evaluation")
    n_facts: int | None = option(None, "facts injected: the toy corpus's size (default 100), "
                                 "or the first N training records of a records corpus "
                                 "(default: all)", min=1)
    # Generation is batched wider than training: one batch of targets and of evaluation.
    eval_batch_size: int = inherit(EvalConfig, "batch_size", default=64,
                                   also=("targets.batch_size",),
                                   note="; also the records advanced together by targets")
    # Short facts: 64 tokens holds every answer of the toy world and of the shipped corpora.
    max_new_tokens: int = inherit(TargetsConfig, "max_new_tokens", default=64,
                                  also=("train.max_new_tokens", "eval.max_new_tokens"),
                                  note="; also of answers and OPSD rollouts")
    lambda_fallback: list[float] = inherit(TargetsConfig, "lambda_fallback",
                                           note="; every mixsd method of the comparison, "
                                           "each from the lambdas below its own")
    top_k: int = inherit(TargetsConfig, "top_k", also=("train.top_k",),
                         note="; also opsd's loss: the teacher's top-k tokens")
    revision: str | None = inherit(TrainConfig, "revision",
                                   also=("targets.revision", "eval.revision"))
    trust_remote_code: bool = inherit(TrainConfig, "trust_remote_code",
                                      also=("targets.trust_remote_code",
                                            "eval.trust_remote_code"))
    device: str = inherit(TrainConfig, "device", also=("targets.device", "eval.device"))
    # -- the stages ---------------------------------------------------------------------
    targets: TargetsConfig = stage_config(
        _targets, flat={k: k for k in TARGETS_FLAT},
        fixed=("method", "mix_lambda", "mix_unit", "lambda_fallback", "seed", "guidance",
               "progress", "overwrite", "export", "dtype"),
        help="the targets stage of every target-based method (method, lambda, unit and seed "
        "come from each method and run)")
    train: TrainConfig = stage_config(
        _train, flat={"opsd_rollouts": "rollouts", **{k: k for k in TRAIN_FLAT}},
        fixed=("method", "targets", "data", "out", "lr", "seed", "stop_above", "stop_metric",
               "stop_floor", "guidance", "progress"),
        # added later: at their defaults, comparisons made before keep their fingerprints
        later=("lora_r", "lora_alpha", "grad_accum", "lr_scheduler", "dtype"),
        help="the training of every run (data, learning rate and seed come from each run)")
    eval: EvalConfig = stage_config(
        _eval, flat={"suites": "suite", **{k: k for k in LMEVAL_FIELDS}},
        fixed=("base_model", "math_max_new_tokens", "mcq_normalize", "num_fewshot", "limit",
               "cache_dir", "dtype", "out"),
        later=("lmeval_include",),
        help="the evaluation every run shares; suites default to the model's registered ones "
        "(toy for the toy model), none otherwise")
    retention_levels: list[float] = option(
        default_factory=list, min=0, max=1, later=True,
        help="staged evaluation: memorisation every epoch; the other splits, the retention "
        "suites and drift only at the epochs where memorisation first reaches one of these "
        "levels (e.g. 0.5,0.8) and at the last epoch (empty: everything every epoch)")
    eval_splits: list[str] | None = option(
        None, "the evaluation splits of a corpus folder scored besides the training "
        "questions (e.g. paraphrase,two_hop; default: every split found)", later=True)
    fisher_examples: int = option(200, "held-out examples of the Fisher (0 = no Fisher)", min=0)
    equal_memorization: float = option(0.8, "memorisation level of the equal-memorisation "
                                       "comparison: each run at its first epoch at or above "
                                       "it; runs that never get there are listed as such",
                                       min=0, max=1)
    rounds: int = option(1, "continual injection: split the facts into N rounds trained one "
                         "after another, each from the previous round's selected checkpoint "
                         "(see mixsd.compare.rounds)", min=1)
    quiet: bool = option(True, "one progress bar on the console; library logs, warnings and "
                         "the trainer's output go to OUT/log.txt")
    edit_config: str = option("", "YAML file of `mixsd edit` values (EditConfig) for the memit "
                              "method (default: its defaults)")
    report: bool = option(True, "write the Markdown/HTML report")
    collect_only: bool = option(False, "train nothing: collect the runs of the grid already "
                                "complete into results.json and the report, and list the "
                                "missing ones (a grid stopped early, read as it stands)",
                                later=True)
    overwrite: bool = option(False, "replace a comparison made with other values in --out: "
                             "the old folder is kept whole beside it (.OUT.replaced) until the "
                             "new one completes, then deleted; an interrupted replacement "
                             "resumes with the same command", later=True)

    def validate(self) -> None:
        """Every value, before any model loads: the stage values by the stages' own checks
        (the suites, --keep, sharding), the methods (and their @GUIDANCE), the rounds and the
        memit method's edit config."""
        super().validate()
        check_extractor(self.extractor)
        check_guidance(self.guidance)
        specs = self.method_specs()
        if len({s.label for s in specs}) != len(self.methods):
            raise ConfigError("methods: each method may appear once (flag --methods)")
        for spec in specs:
            check_guidance(spec.guidance, key=f"methods: {spec.name}: guidance", flag="--methods")
        self.method_lrs()
        if any(s.kind == "opsd" for s in specs) and self.train.sharded:
            raise ConfigError("methods: opsd does not run sharded (--deepspeed, --fsdp); "
                              "compare it with --lora instead (flag --methods)")
        if self.train.stop_at is not None and not 0 <= self.train.stop_at <= 1:
            raise ConfigError(f"stop_at must be in [0, 1], got {self.train.stop_at:g} "
                              "(flag --stop-at)")
        if any(s.kind == "memit" for s in specs):
            self.memit_config(0)
        if self.rounds > 1 and self.train.lora:
            raise ConfigError("rounds: continual injection trains full weights; drop --lora or "
                              "use --rounds 1")
        if self.rounds > 1 and any(s.kind == "memit" for s in specs):
            raise ConfigError("rounds: memit has no training rounds; drop it from --methods")

    def memit_config(self, seed: int) -> EditConfig:
        """The memit method's edit: EditConfig defaults < the ``edit_config`` YAML < the
        comparison's model, guidance, device and ``seed``."""
        return edit_config_with(self.edit_config, model=self.model,
                                guidance=self.resolved_guidance(), device=self.device,
                                seed=seed)

    def method_lrs(self) -> dict[str, list[float]]:
        """``--method-lr`` as {method spec or kind: [lr, ...]} (validated)."""
        return parse_method_lrs(self.method_lr, self.method_specs())

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
        return resolve_guidance_name(self.guidance, self.model)

    def chat_options(self) -> dict[str, Any]:
        """The chat settings given (:func:`mixsd.prompts.chat_options`): every stage's."""
        return chat_options(self.chat_template_kwargs, self.system_prompt)

    def resolved_suites(self) -> list[str]:
        return list(self.eval.suite) or list(model_defaults(self.model).suites)

    def model_id(self) -> str:
        """The model's local path or hub id (an alias resolved)."""
        return resolve_model_path(self.model)

    def hub_options(self) -> dict[str, Any]:
        """The loader keywords of a hub model (:func:`mixsd.models.hub_options`)."""
        return hub_options(self.revision, self.trust_remote_code)

    def grid(self) -> list[tuple[MethodSpec, float | None, int]]:
        """Every (method, learning rate, seed), seed by seed: a long grid stopped early (every
        run is cached) already holds a complete comparison of its first seeds. An edit
        (memit) has no learning rate and no training order: it runs once, with the first
        seed, after every trained run."""
        specs = self.method_specs()
        trained = [s for s in specs if s.kind != "memit"]
        edits = [(s, None, self.seeds[0]) for s in specs if s.kind == "memit"]
        runs: list[tuple[MethodSpec, float | None, int]] = []
        for seed in self.seeds:
            runs += [(s, lr, seed) for s in trained for lr in self.lrs_for(s)]
        return runs + edits

