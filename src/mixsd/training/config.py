"""``TrainConfig``: every knob of ``mixsd train`` (NLL on a targets file, or OPSD)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError
from mixsd.methods import TRAIN_METHODS
from mixsd.models import hub_options, revision_option, trust_remote_code_option
from mixsd.prompts import (
    chat_options,
    chat_template_kwargs_option,
    check_guidance,
    system_prompt_option,
)
from mixsd.training.keep import DEFAULT_KEEP, KEEP_HELP, KeepPolicy

METHODS = TRAIN_METHODS  # mixsd.methods defines the word
# TrainingArguments fields mixsd sets from its own flags (not through --trainer-args).
OWNED_ARGUMENTS = {
    "output_dir": "--out", "num_train_epochs": "--epochs", "learning_rate": "--lr",
    "per_device_train_batch_size": "--batch-size", "gradient_accumulation_steps": "--grad-accum",
    "warmup_steps": "--warmup-steps", "warmup_ratio": "--warmup-ratio",
    "lr_scheduler_type": "--lr-scheduler", "weight_decay": "--weight-decay",
    "max_grad_norm": "--max-grad-norm", "seed": "--seed", "bf16": "--dtype", "fp16": "--dtype",
    "use_cpu": "--device", "save_strategy": "epoch checkpoints", "eval_strategy": "the epoch "
    "evaluation", "gradient_checkpointing": "--gradient-checkpointing",
    "activation_checkpointing": "--gradient-checkpointing", "deepspeed": "--deepspeed",
    "fsdp": "--fsdp", "fsdp_config": "--fsdp-config", "report_to": "--report-to",
    "logging_steps": "--logging-steps", "logging_strategy": "--logging-steps",
    "save_only_model": "--save-only-model", "disable_tqdm": "--progress",
    "remove_unused_columns": "the collators"}
DIVERGENCES = ("reverse_kl", "forward_kl", "jsd")
# The fields only OPSD reads (the rollouts and the loss on them).
OPSD_FIELDS = ("rollouts", "rollout_temperature", "max_new_tokens", "top_k", "divergence",
               "jsd_beta")


@dataclass
class TrainConfig(StageConfig):
    """Configuration of one training run (docs/method.md, "Training" and "Baselines").

    ``method=nll`` is next-token NLL on ``target`` given the naive prompt; it serves SFT, offline
    self-distillation (lambda = 0) and MixSD alike, which differ only in the targets file.
    ``method=opsd`` is on-policy self-distillation on a records file.
    """

    stage = "train"

    model: str = option("", "base model: hub id, local folder or an alias")
    method: str = option("nll", "nll: NLL on a targets file (SFT, MixSD, lambda=0); opsd: "
                         "on-policy self-distillation on a records file", choices=METHODS)
    targets: str | None = option(None, "targets folder written by `mixsd targets` (or a "
                                          "single targets JSONL file) (method nll)")
    data: str | None = option(None, "records JSONL (method opsd)")
    out: str = option("", "run directory (checkpoints epoch-<k>/, metrics.jsonl, config.yaml)")
    epochs: int = option(3, "number of epochs", min=1)
    lr: float = option(1e-5, "peak learning rate (AdamW); > 0 (at 0 no epoch changes a "
                       "weight)", above=0)
    batch_size: int = option(16, "examples (opsd: prompts) per device per micro-batch", min=1)
    grad_accum: int = option(1, "gradient accumulation steps", min=1)
    warmup_ratio: float = option(0.03, "fraction of the optimisation steps spent warming up",
                                 min=0, max=1)
    warmup_steps: int = option(0, "warm-up steps; overrides warmup_ratio when > 0", min=0)
    lr_scheduler: str = option("constant", "learning-rate schedule after warm-up",
                               choices=("constant", "cosine"))
    weight_decay: float = option(0.0, "AdamW weight decay", min=0)
    max_grad_norm: float = option(1.0, "gradient clipping norm (0 = off)", min=0)
    seed: int = option(0, "seed of initialisation (LoRA), data order and OPSD rollouts", min=0)
    lora: bool = option(False, "train a LoRA adapter instead of all weights")
    lora_r: int = option(16, "LoRA rank", min=1)
    lora_alpha: float = option(32.0, "LoRA alpha", min=0)
    lora_dropout: float = option(0.0, "LoRA dropout", min=0, max=1)
    lora_target_modules: list[str] = option(
        help="modules that get adapters (empty = all linear layers)", default_factory=list)
    guidance: str = option("knowledge", "guidance preset of the prompts; must be the one the "
                           "targets were built with")
    chat_template_kwargs: dict[str, Any] = chat_template_kwargs_option()
    system_prompt: str | None = system_prompt_option()
    revision: str | None = revision_option()
    trust_remote_code: bool = trust_remote_code_option()
    include_unverified: bool = option(False, "also train on targets whose answer failed "
                                      "verification (skipped and counted by default)")
    max_length: int | None = option(None, "longest training sequence in tokens (default: the "
                                    "model's context length); longer targets are truncated",
                                    min=2)
    stop_patience: int = option(0, "stop training once stop_metric has not exceeded its best "
                                "for this many epochs (0 = train every epoch)", min=0)
    stop_at: float | None = option(None, "stop training once stop_metric reaches this value "
                                   "(e.g. 1.0 = every injected fact memorised)")
    stop_above: float = option(0.0, "the plateau rule waits until stop_metric exceeds this "
                               "value (the base model's level)")
    stop_metric: str = option("memorization", "epoch metric that stop_patience and stop_at "
                              "watch (a key of metrics.jsonl)")
    stop_floor: list[str] = option(
        default_factory=list, later=True,
        help="a forgetting budget, METRIC=MIN (e.g. retained/general=95): stop once an "
        "epoch's METRIC falls below MIN, and select the epoch with the highest stop_metric "
        "among those that keep every minimum (as `mixsd inject` does)")
    keep: str = option(DEFAULT_KEEP, KEEP_HELP)
    dtype: str = option("auto", "auto: bf16 mixed precision where the device has it, else fp32; "
                        "bfloat16: pure bf16 weights (with --deepspeed: bf16 weights and "
                        "DeepSpeed's fp32 master copy); float32: fp32 throughout",
                        choices=("auto", "float32", "bfloat16"))
    device: str = option("auto", "auto, cpu or cuda", choices=("auto", "cpu", "cuda"))
    progress: bool = option(True, "the trainer's step progress bar (off: its per-epoch log "
                            "lines only)")
    # -- scale: TrainingArguments passed through (docs/scale.md) ---------------------------
    gradient_checkpointing: bool = option(
        False, "recompute activations in the backward pass (less memory, ~30%% more time)",
        later=True)
    deepspeed: str | None = option(
        None, "DeepSpeed config JSON (e.g. ZeRO-3; set stage3_gather_16bit_weights_on_model_"
        "save so every epoch saves whole weights); run under accelerate launch or torchrun",
        later=True)
    fsdp: str | None = option(
        None, "FSDP mode of TrainingArguments (e.g. 'full_shard auto_wrap'); run under "
        "accelerate launch or torchrun", later=True)
    fsdp_config: str | None = option(
        None, "FSDP config JSON of TrainingArguments (use state_dict_type FULL_STATE_DICT so "
        "every epoch saves whole weights)", later=True)
    report_to: list[str] = option(
        default_factory=list, later=True,
        help="where the trainer reports its logs: wandb, tensorboard, ... (default: none)")
    logging_steps: int = option(
        0, "log the training loss every N optimiser steps (0 = once per epoch); metrics.jsonl "
        "keeps the epoch's mean either way", min=0, later=True)
    save_only_model: bool = option(
        False, "epoch checkpoints without optimiser and scheduler state (half the disk of "
        "full fine-tuning; a killed run resumes with fresh AdamW moments)", later=True)
    eval_from_checkpoint: bool | None = option(
        None, "run the epoch evaluation on the saved checkpoint, loaded on the main process, "
        "instead of the model in training memory (default: with --deepspeed or --fsdp, where "
        "the weights in memory are sharded)", later=True)
    trainer_args: dict[str, Any] = option(
        default_factory=dict, later=True,
        help="any other TrainingArguments field, KEY=VALUE (e.g. ddp_timeout=7200,"
        "optim=adamw_torch_fused,torch_compile=true); not those mixsd sets from its own flags")
    # -- OPSD -----------------------------------------------------------------------------
    rollouts: int = option(4, "opsd: rollouts sampled per naive prompt", min=1)
    rollout_temperature: float = option(1.0, "opsd: sampling temperature of the rollouts",
                                        min=1e-6)
    max_new_tokens: int = option(256, "opsd: longest rollout in tokens", min=1)
    top_k: int = option(64, "opsd: the loss compares distributions on the teacher's top-k tokens",
                        min=1)
    divergence: str = option("reverse_kl", "opsd: reverse_kl = KL(student||teacher), forward_kl "
                             "= KL(teacher||student), jsd = generalised JSD(jsd_beta)",
                             choices=DIVERGENCES)
    jsd_beta: float = option(0.5, "opsd: weight of the teacher in the JSD mixture "
                             "M = beta*teacher + (1-beta)*student; in (0, 1)", min=0, max=1)

    def validate(self) -> None:
        super().validate()
        KeepPolicy.parse(self.keep)
        check_guidance(self.guidance)
        self.floors()
        if self.method == "opsd" and self.divergence == "jsd" and not 0 < self.jsd_beta < 1:
            raise ConfigError(f"jsd_beta must be in (0, 1), got {self.jsd_beta:g} (flag --jsd-beta)")
        owned = sorted(set(self.trainer_args) & set(OWNED_ARGUMENTS))
        if owned:
            raise ConfigError(f"trainer_args: {', '.join(owned)} is set by mixsd from its own "
                              f"flags ({', '.join(OWNED_ARGUMENTS[k] for k in owned)}) "
                              "(flag --trainer-args)")
        if self.deepspeed and self.fsdp:
            raise ConfigError("deepspeed and fsdp are two ways to shard: choose one "
                              "(flags --deepspeed, --fsdp)")
        if self.method == "opsd" and self.sharded:
            # Rollouts are sampled with generate() on one process's model, which a sharded
            # model cannot do alone, and the full-FT teacher copy would not be sharded.
            raise ConfigError("method opsd does not run sharded (--deepspeed, --fsdp): use "
                              "--lora (the teacher is the adapter disabled, no copy) on one "
                              "GPU, or data-parallel processes without sharding")

    @classmethod
    def opsd_defaults(cls) -> dict[str, Any]:
        """OPSD's fields (:data:`OPSD_FIELDS`) at their defaults."""
        fields = {f.name: f.default for f in dataclasses.fields(cls)}
        return {name: fields[name] for name in OPSD_FIELDS}

    @property
    def sharded(self) -> bool:
        """Whether the weights in training memory are sharded over the processes
        (DeepSpeed or FSDP): the epoch evaluation then reads the saved checkpoint."""
        return bool(self.deepspeed or self.fsdp)

    @property
    def evaluates_checkpoint(self) -> bool:
        """Whether the epoch evaluation runs on the saved checkpoint (``eval_from_checkpoint``,
        by default when :attr:`sharded`)."""
        return self.sharded if self.eval_from_checkpoint is None else self.eval_from_checkpoint

    def hub_options(self) -> dict[str, Any]:
        """The loader keywords of a hub model (:func:`mixsd.models.hub_options`)."""
        return hub_options(self.revision, self.trust_remote_code)

    def chat_options(self) -> dict[str, Any]:
        """The chat settings given (:func:`mixsd.prompts.chat_options`), as renderer keywords."""
        return chat_options(self.chat_template_kwargs, self.system_prompt)

    def floors(self) -> dict[str, float]:
        """``stop_floor`` as ``{metric: minimum}`` (validated)."""
        from mixsd.evaluation.selection import metric_floors

        return metric_floors(self.stop_floor)

    def check_complete(self) -> None:
        """Check the fields a run needs (left empty by default so YAML can supply them) and
        the files it names."""
        from pathlib import Path

        for key in ("deepspeed", "fsdp_config"):
            value = getattr(self, key)
            if value and not Path(value).is_file():
                raise ConfigError(f"{key}: file not found: {value} "
                                  f"(flag --{key.replace('_', '-')})")
        if not self.model:
            raise ConfigError("model is required (flag --model)")
        if not self.out:
            raise ConfigError("out is required (flag --out)")
        if self.method == "nll" and not self.targets:
            raise ConfigError("targets is required for method nll (flag --targets)")
        if self.method == "opsd" and not self.data:
            raise ConfigError("data is required for method opsd (flag --data)")
