"""Per-epoch checkpoints, the epoch callback and ``metrics.jsonl``; loading a checkpoint back.

Layout of a run directory::

    RUN_DIR/config.yaml  run.json  metrics.jsonl
    RUN_DIR/epoch-1/     weights (or LoRA adapter), tokenizer, optimizer, scheduler, RNG states,
                         trainer_state.json, metrics.json, mixsd_checkpoint.json
    RUN_DIR/epoch-2/ ...

The ``Trainer`` saves into ``checkpoint-<step>/``; once every process has written its part the
main process adds ``metrics.json`` and ``mixsd_checkpoint.json`` and renames the folder to
``epoch-<k>/`` (an atomic rename), so an ``epoch-<k>/`` folder is always complete and a killed
run resumes from the last one.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mixsd.errors import ConfigError, MixsdError
from mixsd.io import atomic_write_json, atomic_write_jsonl
from mixsd.models import CHECKPOINT_INFO

logger = logging.getLogger(__name__)

EPOCH_DIR = re.compile(r"^epoch-(\d+)$")
EpochCallback = Callable[[Any, Any, int], "dict[str, float] | None"]
# What every epoch records without an epoch callback (the trainer's own log).
TRAINER_METRICS = ("train_loss", "learning_rate")


def check_stop_metric(metric: str, recorded: list[str] | tuple[str, ...]) -> None:
    """Refuse a ``stop_metric`` that the run's epochs do not record (``recorded``: the
    trainer's metrics plus the epoch callback's): early stopping and ``--keep selected``
    would silently never act on it."""
    known = list(dict.fromkeys([*TRAINER_METRICS, *recorded]))
    if metric not in known:
        raise ConfigError(f"stop_metric {metric!r} is not a metric this run's epochs record "
                          f"({', '.join(known)}; an evaluation such as `mixsd compare`'s adds "
                          "memorization) (flag --stop-metric)")


def complete_checkpoints(run_dir: str | Path) -> list[Path]:
    """The complete ``epoch-<k>/`` folders of a run, by epoch."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = []
    for child in run_dir.iterdir():
        match = EPOCH_DIR.match(child.name)
        if match and (child / CHECKPOINT_INFO).is_file():
            found.append((int(match.group(1)), child))
    return [path for _, path in sorted(found)]


def remove_partial_checkpoints(run_dir: str | Path) -> list[Path]:
    """Delete ``checkpoint-<step>/`` folders a killed save left behind; return them."""
    run_dir = Path(run_dir)
    stale = [p for p in run_dir.glob("checkpoint-*") if p.is_dir()] if run_dir.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per-epoch metrics of the complete checkpoints (the content of ``metrics.jsonl``)."""
    rows = []
    for ckpt in complete_checkpoints(run_dir):
        path = ckpt / "metrics.json"
        if path.is_file():
            rows.append(json.loads(path.read_text(encoding="utf-8")))
    return rows


def should_stop(history: list[dict[str, Any]], *, metric: str = "memorization",
                patience: int = 0, at: float | None = None, above: float = 0.0,
                floors: Mapping[str, float] | None = None) -> bool:
    """Early stop on a plateau: True once ``metric`` reached ``at``, or once the last
    ``patience`` epochs did not exceed the best value before them (``patience`` 0 = never),
    or once the last epoch let one of the ``floors`` metrics fall below its minimum (a
    forgetting budget, ``{"retained/general": 95.0}``).

    The plateau rule waits until the metric has risen above ``above`` (the base model's
    level): a slow start flat at the base level is not a plateau. Epochs without the metric
    (no epoch callback) never stop a run.
    """
    if floors and history:
        from mixsd.evaluation.selection import below

        last = history[-1]
        if any(isinstance(last.get(k), (int, float)) and below(last[k], low)
               for k, low in floors.items()):
            return True
    values = [row[metric] for row in history if isinstance(row.get(metric), (int, float))]
    if not values:
        return False
    if at is not None and values[-1] >= at:
        return True
    if patience <= 0 or len(values) <= patience:
        return False
    best_before = max(values[:-patience])
    return best_before > above and max(values[-patience:]) <= best_before


class EpochCheckpointCallback(TrainerCallback):
    """Runs the epoch callback, then turns the Trainer's save into ``epoch-<k>/``.

    Order at the end of an epoch (``Trainer``): ``on_epoch_end`` (the evaluation callback runs
    here, on the main process, under a forked RNG so it cannot change training), the epoch's
    mean loss is logged (``on_log``), the checkpoint is saved (``on_save``: finalised here).

    With ``from_checkpoint`` (a dtype; sharded training: DeepSpeed ZeRO-3, FSDP, where the model in
    memory holds one shard per process and a forward needs every process) the evaluation runs
    in ``on_save`` instead, on the checkpoint just written, loaded whole on the main process
    (in that dtype) while the other processes wait; the early-stop decision follows it.
    """

    def __init__(self, run_dir: str | Path, tokenizer: Any, info: dict[str, Any],
                 epoch_callback: EpochCallback | None = None,
                 stop: Callable[[list[dict[str, Any]]], bool] | None = None,
                 after_save: Callable[[], Any] | None = None, *, stop_metric: str | None = None,
                 from_checkpoint: str | None = None):
        self.run_dir = Path(run_dir)
        self.stop_metric = stop_metric  # checked against the first epoch's metrics
        self.saving: Path | None = None  # the checkpoint folder being written, during a save
        self.after_save = after_save  # the --keep policy (main process, after each epoch)
        self.stop = stop
        self.tokenizer = tokenizer
        self.info = info
        self.epoch_callback = epoch_callback
        self.from_checkpoint = from_checkpoint  # None: evaluate the model in memory
        self.trainer: Any = None  # set by the trainer factory (needed for process barriers)
        self.pending: dict[str, Any] = {}
        # The epoch's logged losses with their steps (several per epoch with logging_steps).
        self._loss: list[tuple[float, int]] = []
        self._logged_step = 0
        self._learning_rate: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._logged_step = state.global_step  # a resumed run starts counting here

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = int(round(state.epoch or 0))
        self.pending = {"epoch": epoch, "global_step": state.global_step}
        control.should_save = True
        control.should_log = True
        saving = self.run_dir / f"checkpoint-{state.global_step}"  # written next
        if self.from_checkpoint:
            self.saving = saving
            return control  # evaluated (and the stop decided) once the checkpoint is saved
        if self.epoch_callback is not None and state.is_world_process_zero:
            self.pending.update(run_epoch_callback(self.epoch_callback, model, self.tokenizer,
                                                   epoch))
            self._check_stop_metric()
        self.saving = saving  # an error from here on is one of the save
        if self.stop is not None and self._stop_now(args, state):
            control.should_training_stop = True  # after this epoch's save
        return control

    def _check_stop_metric(self) -> None:
        """The metric early stopping watches must be among the first epoch's metrics."""
        if self.stop_metric is not None:
            check_stop_metric(self.stop_metric, list(self.pending))
            self.stop_metric = None

    def _stop_now(self, args: Any, state: Any) -> bool:
        """The early-stop decision, taken on the main process and shared with the others."""
        decision = [False]
        if state.is_world_process_zero:
            decision[0] = bool(self.stop(read_metrics(self.run_dir) + [self.pending]))
        if getattr(args, "world_size", 1) > 1:
            from accelerate.utils import broadcast_object_list

            broadcast_object_list(decision, from_process=0)
        return decision[0]

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        # A logged loss is the mean since the previous log: weighted by its steps, the logs
        # of an epoch average to the epoch's mean (one log per epoch without logging_steps).
        steps = max(1, state.global_step - self._logged_step)
        self._logged_step = state.global_step
        self._loss.append((float(logs["loss"]), steps))
        if "learning_rate" in logs:
            self._learning_rate = float(logs["learning_rate"])

    def _epoch_loss(self) -> None:
        """The epoch's mean training loss (and last learning rate) into its metrics."""
        if len(self._loss) == 1:  # one log per epoch: its value as it is
            self.pending["train_loss"] = self._loss[0][0]
        elif self._loss:
            self.pending["train_loss"] = (sum(loss * n for loss, n in self._loss)
                                          / sum(n for _, n in self._loss))
        if self._learning_rate is not None:
            self.pending["learning_rate"] = self._learning_rate

    def on_save(self, args, state, control, **kwargs):
        accelerator = self.trainer.accelerator
        accelerator.wait_for_everyone()  # every process has written its RNG state
        self.saving = None
        self._epoch_loss()
        if self.from_checkpoint:
            if self.epoch_callback is not None and state.is_world_process_zero:
                self.pending.update(self._evaluate_saved(args, state))
                self._check_stop_metric()
            accelerator.wait_for_everyone()
            if self.stop is not None and self._stop_now(args, state):
                control.should_training_stop = True
        if state.is_world_process_zero:
            self._finalise(state)
        self.pending, self._loss, self._learning_rate = {}, [], None
        accelerator.wait_for_everyone()
        return control

    def _evaluate_saved(self, args: Any, state: Any) -> dict[str, Any]:
        """The epoch callback on the checkpoint just saved, loaded whole on this process."""
        from mixsd.models import free_accelerator_memory, load_model

        saved = self.run_dir / f"checkpoint-{state.global_step}"
        atomic_write_json(saved / CHECKPOINT_INFO, {**self.info, "epoch": self.pending["epoch"]})
        device = str(args.device) if str(args.device).startswith("cuda") else "cpu"
        dtype = "float32" if device == "cpu" else self.from_checkpoint
        model = load_model(str(saved), device=device, dtype=dtype)
        try:
            return run_epoch_callback(self.epoch_callback, model, self.tokenizer,
                                      self.pending["epoch"])
        finally:
            del model
            free_accelerator_memory()

    def _finalise(self, state: Any) -> None:
        epoch = self.pending.get("epoch", int(round(state.epoch or 0)))
        saved = self.run_dir / f"checkpoint-{state.global_step}"
        final = self.run_dir / f"epoch-{epoch}"
        metrics = {**self.pending, "epoch": epoch}
        atomic_write_json(saved / "metrics.json", metrics)
        atomic_write_json(saved / CHECKPOINT_INFO, {**self.info, "epoch": epoch,
                                                    "global_step": state.global_step})
        if final.exists():
            shutil.rmtree(final)
        saved.rename(final)
        atomic_write_jsonl(self.run_dir / "metrics.jsonl", read_metrics(self.run_dir))
        if self.after_save is not None:
            self.after_save()
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in metrics.items())
        logger.info("epoch %d done: %s -> %s", epoch, shown, final)


def run_epoch_callback(fn: EpochCallback, model: Any, tokenizer: Any, epoch: int
                       ) -> dict[str, float]:
    """Call ``fn(model, tokenizer, epoch)`` in eval mode without touching the training RNG."""
    import torch

    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            metrics = fn(model, tokenizer, epoch) or {}
    finally:
        model.train(was_training)
    if not isinstance(metrics, dict):
        raise MixsdError(f"the epoch callback must return a dict of metrics, got "
                         f"{type(metrics).__name__}")
    return {str(k): (float(v) if isinstance(v, (int, float)) else v) for k, v in metrics.items()}


def load_checkpoint(path: str | Path, *, base_model: Any = None, device: str | None = None,
                    dtype: str | None = "auto") -> tuple[Any, Any]:
    """Load an ``epoch-<k>/`` checkpoint (full weights or LoRA adapter) and its tokenizer.

    The model loads as in :func:`load_checkpoint_model`. Returns ``(model, tokenizer)`` in
    eval mode.
    """
    from mixsd.models import load_tokenizer

    model = load_checkpoint_model(path, base_model=base_model, device=device, dtype=dtype)
    return model, load_tokenizer(str(path))


def load_checkpoint_model(path: str | Path, *, base_model: Any = None,
                          device: str | None = None, dtype: str | None = "auto",
                          merge: bool = False) -> Any:
    """The model of a checkpoint folder (full weights or LoRA adapter), in eval mode, through
    the one model loader (:func:`mixsd.models.load_model`, which ``mixsd eval``, targets and
    training use too): a LoRA checkpoint loads with ``PeftModel`` over ``base_model`` (a model
    object or path; default: the base model the run recorded); ``merge`` folds the adapter
    into the base weights (a plain model). A missing folder or a pruned epoch is refused."""
    from mixsd.models import load_model

    path = Path(path)
    if not path.is_dir():
        raise MixsdError(f"checkpoint not found: {path}")
    return load_model(str(path), base_model=base_model, device=device, dtype=dtype,
                      merge=merge)
