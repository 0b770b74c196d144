"""``InjectConfig``: what ``mixsd inject`` teaches, under which budget, and how.

The injection's config is made of the stage configs: a field passed on to a stage is that
stage's field (:func:`mixsd.config.inherit`), and :meth:`InjectConfig.targets_config` /
:meth:`InjectConfig.train_config` make the stage configs of the targets and of one try. The
recipe is :mod:`mixsd.injection`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from mixsd.answers import check_extractor
from mixsd.config import StageConfig, inherit, option, stage_config
from mixsd.errors import ConfigError
from mixsd.evaluation.config import EvalConfig
from mixsd.evaluation.suites import check_suites
from mixsd.prompts import check_guidance, resolve_guidance_name
from mixsd.registry import model_defaults
from mixsd.targets.config import TargetsConfig
from mixsd.training.config import TrainConfig

DEFAULT_PROBES = ("general", "instruct")
DEFAULT_LR = 1e-4  # a model without a registered rate; halved on each further try


def _targets() -> TargetsConfig:
    # The targets rule measured best on real models: λ 0.5, word rule, retries at T 0.7,
    # the entity check (and the λ fallback 0.3, 0.15, 0: InjectConfig.lambda_fallback).
    return TargetsConfig(method="mixsd", mix_lambda=0.5, mix_unit="word", retry_temperature=0.7,
                         verify_entities=True, progress=False)


@dataclass
class InjectConfig(StageConfig):
    """What ``mixsd inject`` teaches, under which budget, and how (:mod:`mixsd.injection`).

    A field passed on to a stage is that stage's field; where the injection's default
    differs (the targets rule measured best on real models: λ 0.5, word rule, the λ fallback
    0.3, 0.15, 0, retries at T 0.7, the entity check), the ``default=`` below says so."""

    stage = "inject"

    model: str = inherit(TrainConfig, "model", also=("targets.model", "eval.model"),
                         help="the model to teach: a hub id, a local folder, a .gguf file or "
                         "an alias (toy, smollm2)")
    data: str = option("", "the facts: a records JSONL file (id, prompt, answer, answer_key; "
                       "optional paraphrases), a folder written by `mixsd corpus`, or a "
                       "registered corpus (toy, for the toy model)")
    out: str = option("", "output folder: model/ (the model to ship, its card README.md), "
                      "report.md, inject.json; re-running the same command resumes")
    retain: float = option(0.95, "the forgetting budget: every probe keeps at least this "
                           "fraction of the base model's score on its known set", min=0, max=1)
    probe: list[str] = option(default_factory=list, help="probes besides the default ones, "
                              "as `mixsd eval --suite` takes them (general:N, instruct, "
                              "math:F.jsonl, records:F.jsonl, ...); each is scored on the base "
                              "model's known set")
    default_probes: bool = option(True, "also probe with the model's registered suites (the "
                                  "toy world's), else the shipped general and instruct")
    n_facts: int | None = option(None, "teach only the first N facts (a registered corpus: "
                                 "its size)", min=1)
    eval_splits: list[str] = option(default_factory=lambda: ["paraphrase"],
                                    help="the evaluation splits of the facts scored every "
                                    "epoch besides the facts themselves (those the data has; "
                                    "e.g. paraphrase,two_hop)")
    lr: float | None = option(None, "learning rate of the first try, halved on each further "
                              f"try (default: the model's registered one, else {DEFAULT_LR:g})",
                              min=0)
    epochs: int = option(10, "most epochs of a try", min=1)
    patience: int = option(2, "a try stops once memorisation has not risen for this many "
                           "epochs (0: only at --epochs, 100%% or the budget)", min=0)
    tries: int = option(3, "most tries: a try where no epoch within the budget memorises more "
                        "than the base model is followed by one at half the learning rate",
                        min=1)
    max_new_tokens: int = inherit(TargetsConfig, "max_new_tokens", default=64,
                                  also=("eval.max_new_tokens",),
                                  note="; also of the answers scored")
    lambda_fallback: list[float] = inherit(TargetsConfig, "lambda_fallback",
                                           default_factory=lambda: [0.3, 0.15, 0.0],
                                           note="; those below --lambda")
    guidance: str = inherit(TargetsConfig, "guidance", default="auto",
                            also=("train.guidance", "eval.guidance"),
                            note="; auto: the model's registered preset, else knowledge")
    extractor: str = inherit(TargetsConfig, "extractor", also=("eval.extractor",))
    eval_batch_size: int = inherit(EvalConfig, "batch_size", default=64,
                                   also=("targets.batch_size",),
                                   note="; also the records advanced together by targets")
    adapter_only: bool = option(False, "with --lora: ship the adapter alone (needs peft to "
                                "load) instead of merging it into the weights")
    seed: int = inherit(TrainConfig, "seed", also=("targets.seed",),
                        help="seed of the targets' coins, training order and LoRA")
    device: str = inherit(TrainConfig, "device", also=("targets.device", "eval.device"))
    # -- the stages ----------------------------------------------------------------------
    targets: TargetsConfig = stage_config(
        _targets, flat={k: k for k in ("mix_lambda", "mix_unit", "retry_temperature",
                                        "verify_entities", "max_retries")},
        fixed=("method", "lambda_fallback", "guidance", "progress", "overwrite", "export",
               "dtype"),
        help="how the targets are built (the targets rule measured best on real models)")
    train: TrainConfig = stage_config(
        TrainConfig, flat={"batch_size": "batch_size", "lora": "lora"},
        fixed=("method", "targets", "data", "out", "epochs", "lr", "guidance", "stop_patience",
               "stop_at", "stop_above", "stop_floor", "stop_metric", "keep", "progress"),
        help="the training of every try (data, epochs, learning rate and stops come from the "
        "try)")
    eval: EvalConfig = stage_config(
        EvalConfig, fixed=tuple(f.name for f in fields(EvalConfig)
                                if f.name not in ("suite_options", "batch_size")),
        help="the plug-ins' suite options of the probes (the toy world's toy_items, also "
        "eval_items)")
    dry_run: bool = option(False, "print the plan (targets, epochs, estimated minutes from a "
                           "timed forward pass) and stop; nothing is written")
    quiet: bool = option(True, "one progress bar on the console; logs go to OUT/log.txt")

    def validate(self) -> None:
        super().validate()
        if not self.model:
            raise ConfigError("model is required (flag --model)")
        if not self.data:
            raise ConfigError("data is required (flag --data)")
        if not self.out and not self.dry_run:
            raise ConfigError("out is required (flag --out)")
        if self.adapter_only and not self.train.lora:
            raise ConfigError("adapter_only needs lora: only a LoRA run has an adapter "
                              "(flags --adapter-only, --lora)")
        check_extractor(self.extractor)
        check_guidance(self.guidance)
        if self.probe:
            check_suites(self.probe, flag="--probe")
        if not self.probe_specs():
            raise ConfigError("no probe: pass --probe SUITE or keep --default-probes")
        self.targets_config()  # the λ chain's order, checked by the targets stage

    def first_lr(self) -> float:
        return self.lr if self.lr is not None else model_defaults(self.model).lr or DEFAULT_LR

    def lrs(self) -> list[float]:
        """The learning rate of every try: the first, then halved each time."""
        return [self.first_lr() / 2 ** k for k in range(self.tries)]

    def resolved_guidance(self) -> str:
        return resolve_guidance_name(self.guidance, self.model)

    def probe_specs(self) -> list[str]:
        """Every probe as a suite spec held to the known set (:func:`probe_specs`)."""
        found = list(model_defaults(self.model).suites) or list(DEFAULT_PROBES)
        return probe_specs([*(found if self.default_probes else []), *self.probe])

    def targets_config(self) -> TargetsConfig:
        """The targets: the injection's targets config with the λ fallback below its λ and
        the guidance resolved."""
        return replace(self.targets, lambda_fallback=[x for x in self.lambda_fallback
                                                      if x < self.targets.mix_lambda],
                       guidance=self.resolved_guidance())

    def train_config(self, run_dir: Path, targets: Path, lr: float, floor: float,
                     floors: dict[str, float]) -> TrainConfig:
        """One try: stops at a plateau above ``floor`` (the base memorisation), at 100%, or
        below a probe's minimum in ``floors``; keeps the epoch the budget selects."""
        return replace(self.train, targets=str(targets), out=str(run_dir), epochs=self.epochs,
                       lr=lr, guidance=self.resolved_guidance(), stop_patience=self.patience,
                       stop_at=1.0, stop_above=floor,
                       stop_floor=[f"{k}={v:g}" for k, v in floors.items()],
                       keep="selected", progress=not self.quiet)


def probe_specs(specs: list[str]) -> list[str]:
    """Suite specs held to the base model's known set: ``general`` (and ``known:``) already
    are, any other ``SPEC`` becomes ``known:SPEC``; duplicates are dropped."""
    found = [s if s.partition(":")[0] in ("general", "known") else f"known:{s}"
             for s in specs]
    return list(dict.fromkeys(found))
