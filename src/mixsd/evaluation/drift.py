"""Drift: mean KL(base ‖ model) of next-token distributions on neutral prompts.

A cheap, label-free proxy of retention (method.md, "Measurements"): how far the fine-tuned
model's predictions moved from the base model's on text that has nothing to do with the
injected facts. The mean is over every position of every prompt (each position predicts the
next token given the prompt prefix), so longer prompts weigh more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixsd.errors import MixsdError
from mixsd.generation import pad_batch

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
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return pad_batch(ids, pad, side="right")


def drift_kl(base_model: Any, model: Any, tokenizer: Any, prompts: Sequence[str] | None = None,
             *, batch_size: int = 8) -> float:
    """Mean over positions of ``KL(p_base(·|prefix) ‖ p_model(·|prefix))`` in nats.

    Both models must share ``tokenizer``. ``prompts`` defaults to :data:`NEUTRAL_PROMPTS`
    (pass prompts in the model's own language, e.g. the toy world's, when it has one).
    """
    import torch

    from mixsd.training.divergences import kl

    prompts = list(prompts if prompts is not None else NEUTRAL_PROMPTS)
    if not prompts:
        raise MixsdError("drift needs at least one neutral prompt")
    total, count = 0.0, 0
    for start in range(0, len(prompts), batch_size):
        input_ids, mask = _batch(tokenizer, prompts[start:start + batch_size])
        with torch.no_grad():
            p_logits = base_model(input_ids=input_ids.to(_device(base_model)),
                                  attention_mask=mask.to(_device(base_model))).logits
            q_logits = model(input_ids=input_ids.to(_device(model)),
                             attention_mask=mask.to(_device(model))).logits
        logp = torch.log_softmax(p_logits.float().cpu(), dim=-1)
        logq = torch.log_softmax(q_logits.float().cpu(), dim=-1)
        per_position = kl(logp, logq)  # (batch, positions)
        valid = mask.bool()
        total += float(per_position[valid].sum())
        count += int(valid.sum())
    return total / count


def _device(model: Any) -> Any:
    return next(model.parameters()).device
