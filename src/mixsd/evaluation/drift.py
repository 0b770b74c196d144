"""Drift: mean KL(base ‖ model) of next-token distributions on neutral prompts.

A cheap, label-free proxy of retention (docs/method.md, "Measurements"): how far the fine-tuned
model's predictions moved from the base model's on text that has nothing to do with the
injected facts. The mean is over every position of every prompt (each position predicts the
next token given the prompt prefix), so longer prompts weigh more.

The prompts are plain text (no chat template): drift measures the language model's
next-token distributions themselves, so a chat convention does not enter it.

:class:`DriftReference` holds the base model's log-probabilities on the prompts, computed
once: every later epoch compares against them, and no second model stays in memory beside
the one being trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixsd.errors import MixsdError
from mixsd.generation import pad_batch, pad_token_id

NEUTRAL_PROMPTS = (
    "The weather today is",
    "Once upon a time, there was a",
    "The sum of two and three is",
    "Water boils at a temperature of",
    "A list of common fruits includes apples, bananas and",
    "In the morning, most people",
    "The capital of a country is usually",
    "To solve the equation, first",
)


def _batch(tokenizer: Any, prompts: Sequence[str]) -> tuple[Any, Any]:
    ids = [list(tokenizer(p)["input_ids"]) for p in prompts]
    pad = pad_token_id(tokenizer)
    return pad_batch(ids, pad, side="right")


class DriftReference:
    """The base model's next-token log-probabilities on the drift prompts, computed once
    (float32, on the CPU: prompts x positions x vocabulary); :meth:`kl` is the drift of any
    later model against them, without the base model in memory.

    Build it with :meth:`from_model`; ``prompts`` default to :data:`NEUTRAL_PROMPTS`."""

    def __init__(self, prompts: Sequence[str], batches: list[tuple[Any, Any, Any]],
                 batch_size: int):
        self.prompts, self.batches, self.batch_size = list(prompts), batches, batch_size

    @classmethod
    def from_model(cls, base_model: Any, tokenizer: Any, prompts: Sequence[str] | None = None,
                   *, batch_size: int = 8) -> DriftReference:
        """Run ``base_model`` once over the prompts and keep its log-probabilities."""
        import torch

        prompts = list(prompts if prompts is not None else NEUTRAL_PROMPTS)
        if not prompts:
            raise MixsdError("drift needs at least one neutral prompt")
        batches = []
        for start in range(0, len(prompts), batch_size):
            input_ids, mask = _batch(tokenizer, prompts[start:start + batch_size])
            with torch.no_grad():
                logits = base_model(input_ids=input_ids.to(_device(base_model)),
                                    attention_mask=mask.to(_device(base_model))).logits
            batches.append((input_ids, mask, torch.log_softmax(logits.float().cpu(), dim=-1)))
        return cls(prompts, batches, batch_size)

    def kl(self, model: Any) -> float:
        """Mean over positions of ``KL(p_base(·|prefix) ‖ p_model(·|prefix))`` in nats."""
        import torch

        from mixsd.training.divergences import kl

        total, count = 0.0, 0
        for input_ids, mask, logp in self.batches:
            with torch.no_grad():
                q_logits = model(input_ids=input_ids.to(_device(model)),
                                 attention_mask=mask.to(_device(model))).logits
            logq = torch.log_softmax(q_logits.float().cpu(), dim=-1)
            per_position = kl(logp, logq)  # (batch, positions)
            valid = mask.bool()
            total += float(per_position[valid].sum())
            count += int(valid.sum())
        return total / count


def drift_kl(base_model: Any, model: Any, tokenizer: Any, prompts: Sequence[str] | None = None,
             *, batch_size: int = 8) -> float:
    """Mean over positions of ``KL(p_base(·|prefix) ‖ p_model(·|prefix))`` in nats.

    Both models must share ``tokenizer``. ``prompts`` defaults to :data:`NEUTRAL_PROMPTS`
    (pass prompts in the model's own language, e.g. the toy world's, when it has one). To
    measure many models against one base, build a :class:`DriftReference` once.
    """
    return DriftReference.from_model(base_model, tokenizer, prompts,
                                     batch_size=batch_size).kl(model)


def _device(model: Any) -> Any:
    return next(model.parameters()).device
