"""OPSD: on-policy self-distillation, the on-policy baseline of docs/method.md ("Baselines").

For each naive prompt x the student samples ``rollouts`` continuations y ~ p_θ(· | x)
(temperature ``rollout_temperature``, no top-k/top-p filtering; the torch RNG that the
``Trainer`` seeds and checkpoints drives it). The teacher is the frozen base model given the
EXPERT prompt x+ followed by the same y: with LoRA it is the same model with the adapter
disabled (no second copy in memory); with full fine-tuning the base model the caller holds
already (``teacher``: a comparison passes its base model, so no copy is made), else a frozen
copy made before training.
At every rollout position both next-token distributions are restricted to the teacher's top-k
tokens and renormalised, and the loss is the chosen divergence averaged over rollout tokens.

:class:`OPSDTrainer` is a ``Trainer`` subclass, so checkpoints, resume and the epoch callback
are the NLL trainer's.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from transformers import Trainer

from mixsd.generation import left_pad, pad_token_id, right_pad
from mixsd.training.divergences import get_divergence, topk_log_probs


def rollout_logits(model: Any, prompts: Sequence[Sequence[int]],
                   rollouts: Sequence[Sequence[int]], pad_id: int
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token logits of ``model`` at every rollout position, given ``prompt + rollout``.

    Returns ``(logits (B, R, V), mask (B, R))`` where row b, column j is the distribution
    that predicts ``rollouts[b][j]`` and R is the longest rollout.
    """
    device = next(model.parameters()).device
    ids, mask = right_pad([list(p) + list(r) for p, r in zip(prompts, rollouts)], pad_id)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    width = max(len(r) for r in rollouts)
    offsets = torch.arange(width)
    starts = torch.tensor([len(p) - 1 for p in prompts])
    positions = (starts[:, None] + offsets[None, :]).clamp(max=ids.shape[1] - 1).to(device)
    picked = logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
    lengths = torch.tensor([len(r) for r in rollouts])
    valid = (offsets[None, :] < lengths[:, None]).to(device)
    return picked, valid


def opsd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
              divergence: Any, top_k: int) -> torch.Tensor:
    """Divergence on the teacher's top-k tokens (renormalised), mean over rollout tokens."""
    student_logp, teacher_logp = topk_log_probs(student_logits, teacher_logits.detach(), top_k)
    per_token = divergence(student_logp, teacher_logp)
    weights = mask.to(per_token.dtype)
    return (per_token * weights).sum() / weights.sum().clamp(min=1.0)


def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


class OPSDTrainer(Trainer):
    """``Trainer`` whose loss is on-policy self-distillation from the expert-prompted base model.

    Extra args: ``opsd_config`` (a :class:`~mixsd.training.TrainConfig`), ``stop_token_ids``
    (rollouts end at, and include, the first of them) and ``teacher``: for full fine-tuning,
    the base model as the caller holds it (on the student's device; it is only read, under
    ``no_grad``, and left as it is), used instead of a copy. Ignored with LoRA.
    """

    def __init__(self, *args: Any, opsd_config: Any, stop_token_ids: Sequence[int],
                 teacher: Any = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.opsd = opsd_config
        self.stop_token_ids = sorted(int(t) for t in stop_token_ids)
        self.divergence = get_divergence(opsd_config.divergence, beta=opsd_config.jsd_beta)
        self.model_accepts_loss_kwargs = False
        self.teacher: Any = None
        if _is_peft(self.model):
            pass  # the adapter disabled is the teacher
        elif teacher is not None:
            self.teacher = teacher
        else:
            # Full fine-tuning: a frozen copy of the base weights, taken before any training
            # (a resumed run loads its checkpoint into self.model later, in train()).
            self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False)

    @property
    def pad_id(self) -> int:
        return pad_token_id(self.processing_class)

    def sample_rollouts(self, naive_ids: Sequence[Sequence[int]]) -> list[list[int]]:
        """``rollouts`` samples per prompt from the current student (prompt-major order),
        each cut after its first stop token."""
        student = self.accelerator.unwrap_model(self.model)
        device = next(student.parameters()).device
        input_ids, mask = left_pad(naive_ids, self.pad_id)
        was_training = student.training
        student.eval()
        try:
            with torch.no_grad():
                out = student.generate(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device),
                    do_sample=True, temperature=self.opsd.rollout_temperature, top_k=0, top_p=1.0,
                    max_new_tokens=self.opsd.max_new_tokens,
                    num_return_sequences=self.opsd.rollouts, eos_token_id=self.stop_token_ids,
                    pad_token_id=self.pad_id)
        finally:
            student.train(was_training)
        stops = set(self.stop_token_ids)
        rollouts = []
        for row in out[:, input_ids.shape[1]:].tolist():
            cut = next((j + 1 for j, t in enumerate(row) if t in stops), len(row))
            rollouts.append(row[:cut])
        return rollouts

    def teacher_logits(self, expert_ids: Sequence[Sequence[int]],
                       rollouts: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen base model's logits on ``expert prompt + rollout`` (see :func:`rollout_logits`)."""
        with torch.no_grad():
            if self.teacher is not None:
                was_training = self.teacher.training
                self.teacher.eval()
                try:
                    return rollout_logits(self.teacher, expert_ids, rollouts, self.pad_id)
                finally:
                    self.teacher.train(was_training)
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            try:
                with model.disable_adapter():
                    return rollout_logits(model, expert_ids, rollouts, self.pad_id)
            finally:
                model.train(was_training)

    def rollout_loss(self, model: Any, naive_ids: Sequence[Sequence[int]],
                     expert_ids: Sequence[Sequence[int]], rollouts: Sequence[Sequence[int]]
                     ) -> torch.Tensor:
        """OPSD loss of ``model`` on given rollouts (``naive_ids``/``expert_ids`` per rollout)."""
        teacher, _ = self.teacher_logits(expert_ids, rollouts)
        student, mask = rollout_logits(model, naive_ids, rollouts, self.pad_id)
        return opsd_loss(student, teacher, mask, self.divergence, self.opsd.top_k)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        n = self.opsd.rollouts
        naive = [ids for ids in inputs["naive_ids"] for _ in range(n)]
        expert = [ids for ids in inputs["expert_ids"] for _ in range(n)]
        rollouts = self.sample_rollouts(inputs["naive_ids"])
        loss = self.rollout_loss(model, naive, expert, rollouts)
        return (loss, {"loss": loss}) if return_outputs else loss

    def floating_point_ops(self, inputs: dict[str, Any]) -> int:
        return 0  # prompts only; the rollouts are sampled inside compute_loss
