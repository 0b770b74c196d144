"""Training data: NLL examples from a targets file, OPSD prompts from a records file, collators.

Prompts are rendered by :class:`~mixsd.prompts.PromptRenderer` only, so training conditions on
exactly the naive prompt the target engine conditioned on (docs/method.md, "Training").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.generation import pad_batch
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord, TargetRecord

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class DataStats:
    """What went into training and what was left out, and why."""

    n_records: int = 0
    n_examples: int = 0
    n_skipped_unverified: int = 0
    n_skipped_too_long: int = 0
    n_truncated: int = 0
    n_target_tokens: int = 0
    skipped_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["skipped_ids"] = self.skipped_ids[:50]
        return out


def targets_guidance(targets: Sequence[TargetRecord], path: str | Path) -> set[str]:
    """Guidance preset names the targets say they were built with: ``meta["guidance"]`` of each
    record, and ``guidance`` of the config ``mixsd targets`` wrote: a targets folder's
    ``DIR/config.yaml`` (a single file's ``<targets>.config.yaml`` sidecar before folders)."""
    import yaml

    names = {str(t.meta["guidance"]) for t in targets if t.meta.get("guidance")}
    path = Path(path)
    sidecar = path / "config.yaml" if path.is_dir() else Path(str(path) + ".config.yaml")
    if sidecar.is_file():
        try:
            data = yaml.safe_load(sidecar.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            data = {}
        if isinstance(data, dict) and data.get("guidance"):
            names.add(str(data["guidance"]))
    return names


def check_guidance(targets: Sequence[TargetRecord], guidance: str, path: str | Path) -> None:
    """Refuse targets whose engine laid out the naive prompt differently from training.

    Training must condition on exactly the naive prompt the engine conditioned on. A preset
    with another name but the same naive layout only logs a warning.
    """
    from mixsd.prompts import get_guidance

    ours = get_guidance(guidance)
    for name in sorted(targets_guidance(targets, path) - {ours.name}):
        try:
            same_layout = get_guidance(name).naive_format == ours.naive_format
        except MixsdError:
            same_layout = False
        if not same_layout:
            raise MixsdError(f"{path}: the targets were built with guidance {name!r} but training "
                             f"renders prompts with guidance {ours.name!r}; pass --guidance {name}")
        logger.warning("%s: targets built with guidance %r, training with %r (same naive "
                       "prompt layout)", path, name, ours.name)


def nll_examples(targets: Sequence[TargetRecord], renderer: PromptRenderer, *,
                 include_unverified: bool = False, max_length: int | None = None,
                 ) -> tuple[list[dict[str, list[int]]], DataStats]:
    """``{"input_ids", "labels"}`` per usable target: naive prompt ids + target ids, with the
    prompt positions labelled ``-100`` so that only target tokens are learned."""
    stats = DataStats(n_records=len(targets))
    examples = []
    for item in targets:
        if not item.verified and not include_unverified:
            stats.n_skipped_unverified += 1
            stats.skipped_ids.append(item.record.id)
            continue
        prompt_ids, target_ids = renderer.training_example(item.record.prompt, item.target)
        if max_length is not None and len(prompt_ids) + len(target_ids) > max_length:
            if len(prompt_ids) >= max_length:
                stats.n_skipped_too_long += 1
                stats.skipped_ids.append(item.record.id)
                continue
            target_ids = target_ids[: max_length - len(prompt_ids)]
            stats.n_truncated += 1
        examples.append({"input_ids": prompt_ids + target_ids,
                         "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids})
        stats.n_target_tokens += len(target_ids)
    stats.n_examples = len(examples)
    if stats.n_skipped_unverified:
        logger.info("skipped %d unverified target(s) (use --include-unverified to keep them)",
                    stats.n_skipped_unverified)
    if stats.n_truncated or stats.n_skipped_too_long:
        logger.warning("%d target(s) truncated and %d skipped to fit max_length=%s",
                       stats.n_truncated, stats.n_skipped_too_long, max_length)
    return examples, stats


def opsd_examples(records: Sequence[KnowledgeRecord], renderer: PromptRenderer, *,
                  max_prompt_length: int | None = None,
                  ) -> tuple[list[dict[str, list[int]]], DataStats]:
    """``{"naive_ids", "expert_ids"}`` per record: what the student and the teacher condition on."""
    stats = DataStats(n_records=len(records))
    examples = []
    for rec in records:
        naive = renderer.naive_ids(rec.prompt)
        expert = renderer.expert_ids(rec.prompt, rec.answer)
        if max_prompt_length is not None and len(expert) >= max_prompt_length:
            stats.n_skipped_too_long += 1
            stats.skipped_ids.append(rec.id)
            continue
        examples.append({"naive_ids": naive, "expert_ids": expert})
    stats.n_examples = len(examples)
    if stats.n_skipped_too_long:
        logger.warning("%d record(s) skipped: expert prompt longer than %s tokens",
                       stats.n_skipped_too_long, max_prompt_length)
    return examples, stats


class PadCollator:
    """Right-pad ``input_ids`` with ``pad_id`` and ``labels`` with -100; add the attention mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        input_ids, mask = pad_batch([f["input_ids"] for f in features], self.pad_id, side="right")
        labels, _ = pad_batch([f["labels"] for f in features], IGNORE_INDEX, side="right")
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


class PromptCollator:
    """OPSD batches stay lists of prompt ids; rollouts are sampled inside the trainer."""

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        return {"naive_ids": [list(f["naive_ids"]) for f in features],
                "expert_ids": [list(f["expert_ids"]) for f in features]}
