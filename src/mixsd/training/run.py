"""``train``: the entry function of ``mixsd train`` (NLL on targets, or OPSD on records).

Both methods run on the transformers ``Trainer`` (AdamW, warm-up then constant or cosine LR,
gradient accumulation, bf16 where the device has it, accelerate for multi-process runs), so
checkpoints, resume and the epoch callback are shared. The steps, in order:

1. check the run directory (a re-run of the same command resumes; a different one is refused;
   one process writes it at a time: its lock, :func:`mixsd.artifacts.open_stage`);
2. load the model and tokenizer, build the dataset from the ONE prompt renderer;
3. wrap in LoRA if asked; build the trainer with the epoch-checkpoint callback;
4. train, resuming from the last complete ``epoch-<k>/``; record provenance in ``run.json``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.artifacts import COMPLETE, RUNNING, Reuse, StageDir, open_stage
from mixsd.errors import ArtifactWriteError, MixsdError, is_write_failure
from mixsd.generation import pad_token_id
from mixsd.io import file_sha256, read_json_or_empty
from mixsd.prompts import PromptRenderer
from mixsd.training.checkpoints import (
    TRAINER_METRICS,
    EpochCallback,
    EpochCheckpointCallback,
    check_stop_metric,
    complete_checkpoints,
    read_metrics,
    remove_partial_checkpoints,
    should_stop,
)
from mixsd.training.config import TrainConfig
from mixsd.training.data import (
    DataStats,
    PadCollator,
    PromptCollator,
    check_guidance,
    nll_examples,
    opsd_examples,
)
from mixsd.training.keep import KeepPolicy, apply_keep

logger = logging.getLogger(__name__)

# Config keys that may change between a killed run and its resumption (left out of the
# run folder's fingerprint): where it runs, what it keeps, how it reports and how it saves
# memory, none of which changes the weights it trains.
RESUMABLE_CHANGES = ("device", "keep", "progress", "report_to", "logging_steps",
                     "gradient_checkpointing", "eval_from_checkpoint")


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    epochs: int
    checkpoints: list[Path]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    resumed_from_epoch: int = 0
    wall_s: float = 0.0
    main_process: bool = True

    def summary(self) -> str:
        """A few lines for the CLI."""
        lines = [f"trained {self.epochs} epoch(s) -> {self.run_dir}"]
        if self.resumed_from_epoch:
            lines.append(f"resumed after epoch {self.resumed_from_epoch}")
        if self.data:
            lines.append(f"examples: {self.data.get('n_examples')} of {self.data.get('n_records')} "
                         f"records ({self.data.get('n_skipped_unverified', 0)} unverified skipped)")
        for row in self.metrics:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                              if isinstance(v, float))
            lines.append(f"epoch {row.get('epoch')}: {shown}")
        if self.checkpoints:
            lines.append(f"last checkpoint: {self.checkpoints[-1]}")
        return "\n".join(lines)


def source_info(config: TrainConfig) -> dict[str, Any]:
    """The input file of the run (path and sha256): the targets (a targets folder's
    ``targets.jsonl``, or a single targets file; a folder whose run is not complete is
    refused) or, for OPSD, the records."""
    from mixsd.records import targets_file

    path = targets_file(config.targets) if config.method == "nll" else Path(config.data)
    if not path.is_file():
        raise MixsdError(f"{'targets' if config.method == 'nll' else 'data'} file not found: {path}")
    return {"path": str(path.resolve()), "sha256": file_sha256(path)}


def run_fields(config: TrainConfig, source: dict[str, Any]) -> dict[str, Any]:
    """What decides a run's checkpoints (its fingerprinted fields): the config and the
    sha256 of its input file."""
    return {**config.decisive_dict(), "source_sha256": source["sha256"]}


def _legacy_fields(run_dir: Path) -> dict[str, Any] | None:
    """The fields of a run folder written before :mod:`mixsd.artifacts`: its config.yaml
    and the input's sha256 its run.json recorded."""
    if not (run_dir / "config.yaml").is_file():
        return None
    fields = TrainConfig.from_yaml(run_dir / "config.yaml").to_dict()
    sha = (read_json_or_empty(run_dir / "run.json").get("source") or {}).get("sha256")
    return {**fields, **({"source_sha256": sha} if sha else {})}


def open_run_dir(run_dir: Path, config: TrainConfig, source: dict[str, Any]) -> StageDir:
    """Open the run folder (:func:`mixsd.artifacts.open_stage`): a re-run of the same config
    on the same input resumes, another one is refused once an epoch is kept."""
    return open_stage(run_dir, "training run", run_fields(config, source),
                      reuse=Reuse(mutable=RESUMABLE_CHANGES, defaults=config.later_defaults(),
                                  legacy=_legacy_fields,
                                  has_outputs=bool(complete_checkpoints(run_dir))))


def load_inputs(config: TrainConfig, model: Any, tokenizer: Any) -> tuple[Any, Any]:
    """The model and tokenizer to train (given ones are used as they are)."""
    from mixsd.models import load_model_and_tokenizer, load_tokenizer

    if model is None:
        dtype = "bfloat16" if config.dtype == "bfloat16" else "float32"
        model, loaded_tok = load_model_and_tokenizer(config.model, device="cpu", dtype=dtype,
                                                     **config.hub_options())
        tokenizer = tokenizer or loaded_tok
    elif tokenizer is None:
        tokenizer = load_tokenizer(config.model, **config.hub_options())
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def build_dataset(config: TrainConfig, renderer: PromptRenderer, model: Any
                  ) -> tuple[Any, DataStats]:
    """NLL examples from the targets file, or OPSD prompts from the records file, as a
    ``datasets.Dataset`` (in memory, in file order)."""
    from mixsd.models import context_length
    from mixsd.records import read_records, read_targets

    max_length = config.max_length or context_length(model)
    if config.method == "nll":
        targets = read_targets(config.targets)
        check_guidance(targets, renderer.guidance.name, config.targets)
        examples, stats = nll_examples(targets, renderer, max_length=max_length,
                                       include_unverified=config.include_unverified)
    else:
        records = read_records(config.data)
        limit = None if max_length is None else max_length - config.max_new_tokens
        examples, stats = opsd_examples(records, renderer, max_prompt_length=limit)
    if not examples:
        raise MixsdError(f"no training examples left in {config.targets or config.data} "
                         f"({stats.n_skipped_unverified} unverified, {stats.n_skipped_too_long} "
                         "too long)")
    from datasets import Dataset

    return Dataset.from_list(examples), stats


def apply_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` in a LoRA adapter (seeded initialisation)."""
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    set_seed(config.seed)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, task_type="CAUSAL_LM",
                      target_modules=config.lora_target_modules or "all-linear")
    return get_peft_model(model, lora)


def training_arguments(config: TrainConfig, run_dir: Path, n_examples: int = 0) -> Any:
    """``TrainingArguments`` for one epoch-checkpointed run."""
    import torch
    from transformers import TrainingArguments

    use_cpu = config.device == "cpu" or not torch.cuda.is_available()
    if config.device == "cuda" and not torch.cuda.is_available():
        raise MixsdError("device cuda requested but no CUDA device is available")
    # auto: fp32 weights under bf16 autocast; bfloat16 under DeepSpeed: bf16 weights whose
    # fp32 master copy DeepSpeed's optimizer shards keep (bf16 mode on); else pure bf16.
    bf16 = not use_cpu and torch.cuda.is_bf16_supported() and (
        config.dtype == "auto" or (config.dtype == "bfloat16" and bool(config.deepspeed)))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    warmup = warmup_steps(config, n_examples, world)
    scale = scale_arguments(config)
    try:
        return TrainingArguments(
            output_dir=str(run_dir), num_train_epochs=config.epochs, learning_rate=config.lr,
            per_device_train_batch_size=config.batch_size,
            gradient_accumulation_steps=config.grad_accum, warmup_steps=warmup,
            lr_scheduler_type="cosine" if config.lr_scheduler == "cosine"
            else "constant_with_warmup",
            weight_decay=config.weight_decay, max_grad_norm=config.max_grad_norm,
            seed=config.seed, bf16=bf16, use_cpu=use_cpu, save_strategy="epoch",
            eval_strategy="no", remove_unused_columns=False, disable_tqdm=not config.progress,
            **scale)
    except TypeError as exc:  # an unknown --trainer-args key
        raise MixsdError(f"trainer_args: {exc} (flag --trainer-args)") from None


def scale_arguments(config: TrainConfig) -> dict[str, Any]:
    """The ``TrainingArguments`` a user passes through (docs/scale.md): gradient
    checkpointing, DeepSpeed, FSDP, reporting, logging, lean checkpoints, then
    ``trainer_args`` (any other field, over mixsd's defaults of those it does not own)."""
    found: dict[str, Any] = {
        "optim": "adamw_torch", "dataloader_num_workers": 0, "ddp_find_unused_parameters": False,
        "report_to": list(config.report_to) or "none",
        "logging_strategy": "steps" if config.logging_steps else "epoch",
        "save_only_model": config.save_only_model,
    }
    if config.logging_steps:
        found["logging_steps"] = config.logging_steps
    if config.gradient_checkpointing:
        # Non-reentrant checkpointing also works where the inputs need no grad (LoRA);
        # transformers 5 renames the field activation_checkpointing.
        import dataclasses

        from transformers import TrainingArguments

        name = "activation_checkpointing" if "activation_checkpointing" in {
            f.name for f in dataclasses.fields(TrainingArguments)} else "gradient_checkpointing"
        found.update({name: True, f"{name}_kwargs": {"use_reentrant": False}})
    if config.deepspeed:
        found["deepspeed"] = config.deepspeed
    if config.fsdp:
        found["fsdp"] = config.fsdp
    if config.fsdp_config:
        found["fsdp_config"] = config.fsdp_config
    return {**found, **config.trainer_args}


def build_trainer(config: TrainConfig, model: Any, tokenizer: Any, dataset: Any,
                  renderer: PromptRenderer, callback: EpochCheckpointCallback,
                  teacher: Any = None) -> Any:
    """The NLL ``Trainer`` or the OPSD trainer (``teacher``: see :func:`train`), with the
    epoch-checkpoint callback."""
    args = training_arguments(config, Path(config.out), len(dataset))
    if config.method == "nll":
        from transformers import Trainer

        trainer = Trainer(model=model, args=args, train_dataset=dataset,
                          data_collator=PadCollator(pad_token_id(tokenizer)),
                          processing_class=tokenizer, callbacks=[callback])
    else:
        from mixsd.training.opsd import OPSDTrainer

        trainer = OPSDTrainer(model=model, args=args, train_dataset=dataset,
                              data_collator=PromptCollator(), processing_class=tokenizer,
                              callbacks=[callback], opsd_config=config,
                              stop_token_ids=renderer.stop_ids(model), teacher=teacher)
    callback.trainer = trainer
    return trainer


def _stopper(config: TrainConfig) -> Any:
    """The early-stop rule of ``config`` as ``history -> bool`` (see :func:`should_stop`)."""
    return functools.partial(should_stop, metric=config.stop_metric,
                             patience=config.stop_patience, at=config.stop_at,
                             above=config.stop_above, floors=config.floors())


def warmup_steps(config: TrainConfig, n_examples: int, world_size: int = 1) -> int:
    """Warm-up steps: ``warmup_steps`` when set, else ``floor(warmup_ratio * total steps)``.

    Rounding DOWN matters on tiny target sets: with 7 targets an epoch is one step, and a
    ratio rounded up gives a warm-up step at learning rate 0, an epoch that changes nothing.
    """
    if config.warmup_steps > 0:
        return config.warmup_steps
    per_step = config.batch_size * config.grad_accum * max(1, world_size)
    total = math.ceil(n_examples / per_step) * config.epochs
    return int(config.warmup_ratio * total)


def prune_checkpoints(config: TrainConfig, *, complete: bool) -> list[Path]:
    """Apply ``config.keep`` to the run's checkpoints (see :mod:`mixsd.training.keep`); the
    selected epoch is the first peak of ``stop_metric`` above ``stop_above`` (under a
    ``stop_floor`` budget: the highest within it)."""
    run_dir = Path(config.out)
    return apply_keep(complete_checkpoints(run_dir), read_metrics(run_dir),
                      KeepPolicy.parse(config.keep), metric=config.stop_metric,
                      floor=config.stop_above, complete=complete, floors=config.floors())


def _train(trainer: Any, run_dir: Path, resume: str | None,
           callback: EpochCheckpointCallback) -> None:
    """``trainer.train``; a checkpoint that cannot be written (a full disk, a file-size limit,
    a read-only folder: torch and safetensors report it in their own words, without a path)
    ends in one :class:`ArtifactWriteError` naming the checkpoint folder; the complete
    ``epoch-<k>/`` folders stay as they were (the save goes to ``checkpoint-<step>/``, removed
    here) and the same command resumes after the last one."""
    try:
        trainer.train(resume_from_checkpoint=resume)
    except (ArtifactWriteError, KeyboardInterrupt):
        raise
    except Exception as exc:
        saving = callback.saving
        if saving is None and not is_write_failure(exc):
            raise
        where = Path(getattr(exc, "filename", None) or saving or run_dir)
        raise _save_failure(where, saving, run_dir, exc) from exc


def _save_failure(where: Path, saving: Path | None, run_dir: Path,
                  exc: BaseException) -> ArtifactWriteError:
    import shutil

    if saving is not None:
        shutil.rmtree(saving, ignore_errors=True)  # an incomplete checkpoint, and its space
    done = complete_checkpoints(run_dir)
    kept = f"it resumes after {done[-1]}" if done else "no epoch was complete yet"
    try:
        free = f"{shutil.disk_usage(run_dir).free / 2**20:.0f} MiB free there; "
    except OSError:
        free = ""
    cause = exc if isinstance(exc, OSError) else RuntimeError(
        f"the checkpoint's files could not be written ({type(exc).__name__}: {exc})")
    return ArtifactWriteError(where, cause, advice=f"{free}free disk space (or raise the "
                              f"file-size limit) and re-run the same command ({kept})")


def _result(config: TrainConfig, run_dir: Path, data: dict, resumed: int, wall_s: float,
            main: bool = True) -> TrainResult:
    ckpts = complete_checkpoints(run_dir)
    return TrainResult(run_dir=run_dir, epochs=len(ckpts), checkpoints=ckpts,
                       metrics=read_metrics(run_dir), data=data, resumed_from_epoch=resumed,
                       wall_s=wall_s, main_process=main)


def recorded_train_seconds(run_dir: str | Path) -> float:
    """Training seconds that ``RUN_DIR/run.json`` records over every call that completed
    (``wall_s_total``; ``wall_s`` for a run written before it existed), 0 when none did.
    A call that was killed records none."""
    path = Path(run_dir) / "run.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0
    return float(info.get("wall_s_total", info.get("wall_s", 0.0)) or 0.0)


def train(config: TrainConfig, *, model: Any = None, tokenizer: Any = None,
          epoch_callback: EpochCallback | None = None, teacher: Any = None) -> TrainResult:
    """Train ``config.model`` (or the given ``model``) and checkpoint every epoch.

    ``epoch_callback(model, tokenizer, epoch) -> dict[str, float]`` runs after every epoch on
    the main process; its metrics and the epoch's train loss go to ``RUN_DIR/metrics.jsonl``.
    Re-running the same config resumes from the last complete ``epoch-<k>/``.

    ``teacher`` (OPSD with full fine-tuning): the base model, already loaded by the caller
    on the training device, which scores the rollouts instead of a frozen copy of the start
    model (``mixsd compare`` passes its base model: one copy of the weights fewer). It is
    only read. Give it only when it holds the weights training starts from.
    """
    from mixsd.models import check_device_available

    start = time.time()
    config.check_complete()
    if model is None:
        check_device_available(config.device)
    if epoch_callback is None and _watches_metric(config):
        check_stop_metric(config.stop_metric, TRAINER_METRICS)
    run_dir = Path(config.out)
    source = source_info(config)
    with open_run_dir(run_dir, config, source) as stage:
        return _train_in(config, stage, source, (model, teacher), tokenizer, epoch_callback,
                         start)


def _watches_metric(config: TrainConfig) -> bool:
    """Whether ``stop_metric`` was chosen or early stopping watches it (then a run must
    record it: :func:`check_stop_metric`)."""
    default = TrainConfig.__dataclass_fields__["stop_metric"].default
    return (config.stop_metric != default or config.stop_patience > 0
            or config.stop_at is not None)


def _train_in(config: TrainConfig, stage: StageDir, source: dict[str, Any],
              models: tuple[Any, Any], tokenizer: Any, epoch_callback: EpochCallback | None,
              start: float) -> TrainResult:
    """:func:`train` in its opened (locked) run folder; ``models``: (model, teacher)."""
    model, teacher = models
    run_dir = stage.path
    done = complete_checkpoints(run_dir)
    if len(done) >= config.epochs or (done and _stopper(config)(read_metrics(run_dir))):
        logger.info("%s already holds %d epoch(s); nothing to train", run_dir, len(done))
        if os.environ.get("RANK", "0") == "0":
            prune_checkpoints(config, complete=True)
        return _result(config, run_dir, {}, len(done), 0.0,
                       main=os.environ.get("RANK", "0") == "0")
    # A LoRA checkpoint is loaded over this base model later (load_checkpoint).
    base_model = config.model if model is None else (
        getattr(model, "name_or_path", None) or config.model)
    model, tokenizer = load_inputs(config, model, tokenizer)
    renderer = PromptRenderer(tokenizer, config.guidance, **config.chat_options())
    dataset, stats = build_dataset(config, renderer, model)
    if config.lora:
        model = apply_lora(model, config)
    info = {"base_model": base_model, "lora": config.lora, "method": config.method,
            **config.hub_options()}  # a LoRA checkpoint reloads its base at this revision
    callback = EpochCheckpointCallback(run_dir, tokenizer, info, epoch_callback,
                                       stop=_stopper(config),
                                       after_save=lambda: prune_checkpoints(config,
                                                                            complete=False),
                                       stop_metric=config.stop_metric
                                       if _watches_metric(config) else None,
                                       from_checkpoint=config.dtype if config.evaluates_checkpoint
                                       else None)
    trainer = build_trainer(config, model, tokenizer, dataset, renderer, callback, teacher)
    main = trainer.args.process_index == 0
    # Seconds recorded by the calls that trained the epochs this call resumes from.
    earlier_s = recorded_train_seconds(run_dir) if done else 0.0
    if main:
        remove_partial_checkpoints(run_dir)
        stage.write_info(config, source=source, data=stats.to_dict(), status=RUNNING,
                       seed=config.seed, device=str(trainer.args.device),
                       world_size=trainer.args.world_size)
    trainer.accelerator.wait_for_everyone()
    resume = str(done[-1]) if done else None
    _train(trainer, run_dir, resume, callback)
    wall_s = time.time() - start
    if main:
        prune_checkpoints(config, complete=True)
        stage.write_info(config, source=source, data=stats.to_dict(), status=COMPLETE,
                       seed=config.seed, device=str(trainer.args.device),
                       world_size=trainer.args.world_size, wall_s=round(wall_s, 3),
                       wall_s_total=round(earlier_s + wall_s, 3), resumed_from_epoch=len(done))
    trainer.accelerator.wait_for_everyone()
    return _result(config, run_dir, stats.to_dict(), len(done), wall_s, main)
