"""Checkpoint retention (``--keep``): which ``epoch-<k>/`` folders keep their weights.

A full fine-tuning checkpoint with its optimiser state is about 3x the model (1.5 GB an epoch
for a 135M model), so a run keeps only what later stages read. A policy is ``all``, a
comma list of ``selected`` (the epoch that checkpoint selection picks: the first peak of the
selection metric above the base level, docs/method.md) and ``last``, or an integer N (the N
newest). During training the newest epoch is always kept whole, since a killed run resumes
from it; an epoch that is not kept becomes a stub that holds only ``metrics.json`` and
``mixsd_checkpoint.json`` (marked ``pruned``), so epoch counts, metrics, resumption and
reports do not change. When the run is complete, the kept checkpoints also drop their
optimiser and scheduler state (nothing resumes a finished run), except under ``all``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.errors import ConfigError
from mixsd.io import atomic_write_json

DEFAULT_KEEP = "selected,last"
KEEP_HELP = ("checkpoints that keep their weights: 'selected,last' (the selected epoch, the "
             "first peak of the selection metric, and the last), 'last', 'selected', 'all', "
             "or N (the N newest); other epochs keep only their metrics")
STUB_FILES = ("metrics.json", "mixsd_checkpoint.json")
TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt")


@dataclass(frozen=True)
class KeepPolicy:
    """A parsed ``--keep`` value (see the module docstring)."""

    everything: bool = False
    selected: bool = False
    last: bool = False
    newest: int = 0

    @classmethod
    def parse(cls, text: str | int) -> KeepPolicy:
        raw = str(text).strip().lower()
        if raw == "all":
            return cls(everything=True)
        if raw.isdigit():
            if int(raw) < 1:
                raise ConfigError(f"keep must keep at least 1 checkpoint, got {text!r} (flag --keep)")
            return cls(newest=int(raw))
        parts = {p.strip() for p in raw.split(",") if p.strip()}
        if not parts or not parts <= {"selected", "last"}:
            raise ConfigError(f"keep must be 'all', N, or a comma list of 'selected' and 'last', "
                              f"got {text!r} (flag --keep)")
        return cls(selected="selected" in parts, last="last" in parts)

    def kept(self, epochs: Sequence[int], selected: int | None, *, training: bool) -> set[int]:
        """The epochs of ``epochs`` (sorted) that keep their weights."""
        if self.everything or not epochs:
            return set(epochs)
        keep = set(epochs[-self.newest:]) if self.newest else set()
        if self.selected and selected is not None:
            keep.add(selected)
        if self.last or training or not keep:  # a killed run resumes from the newest epoch
            keep.add(epochs[-1])
        return keep


def selected_epoch(metrics: Sequence[dict[str, Any]], metric: str = "memorization",
                   floor: float | None = None,
                   floors: Mapping[str, float] | None = None) -> int | None:
    """The epoch checkpoint selection picks from ``metrics`` rows (the first peak of
    ``metric`` above ``floor``; under a forgetting budget ``floors``, the highest ``metric``
    within it, :func:`mixsd.evaluation.selection.budget_pick`), or None when no row has the
    metric (no evaluation)."""
    from mixsd.evaluation.selection import budget_pick, first_peak

    if not any(isinstance(row.get(metric), (int, float)) for row in metrics):
        return None
    if floors:
        index = budget_pick(metrics, floors, metric=metric, floor=floor)[0]
    else:
        index = first_peak([row.get(metric) for row in metrics], floor=floor)
    return int(metrics[index].get("epoch", index + 1))


def is_pruned(checkpoint: str | Path) -> bool:
    """Whether ``checkpoint`` is a stub whose weights ``--keep`` removed."""
    from mixsd.models import checkpoint_info

    return bool(checkpoint_info(checkpoint).get("pruned"))


def _to_stub(checkpoint: Path) -> None:
    info_path = checkpoint / "mixsd_checkpoint.json"
    info = json.loads(info_path.read_text(encoding="utf-8"))
    atomic_write_json(info_path, {**info, "pruned": True})  # first: a stub is never mistaken
    for child in checkpoint.iterdir():
        if child.name in STUB_FILES:
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _drop_training_state(checkpoint: Path) -> None:
    for child in checkpoint.iterdir():
        if child.name in TRAINING_STATE:
            child.unlink()


def apply_keep(checkpoints: Sequence[Path], metrics: Sequence[dict[str, Any]],
               policy: KeepPolicy, *, metric: str = "memorization", floor: float | None = None,
               complete: bool = False, floors: Mapping[str, float] | None = None
               ) -> list[Path]:
    """Prune ``checkpoints`` (complete ``epoch-<k>/`` folders, by epoch) to ``policy``;
    return the folders turned into stubs now."""
    epochs = [int(p.name.split("-")[1]) for p in checkpoints]
    kept = policy.kept(epochs, selected_epoch(metrics, metric, floor, floors),
                       training=not complete)
    pruned = []
    for epoch, path in zip(epochs, checkpoints, strict=True):
        # A stub still holding files was cut short (a kill mid-prune): finish it.
        if epoch not in kept and any(c.name not in STUB_FILES for c in path.iterdir()):
            _to_stub(path)
            pruned.append(path)
        elif epoch in kept and complete and not policy.everything:
            _drop_training_state(path)
    return pruned
