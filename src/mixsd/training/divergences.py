"""Named token-level divergences between student and teacher next-token distributions.

Every function takes log-probabilities ``student_logp`` and ``teacher_logp`` of the same shape
``(..., V)`` (normalised over the last axis) and returns the divergence per position, shape
``(...)``. Directions are explicit in the names (docs/method.md, "Baselines"):

* :func:`forward_kl` = KL(teacher ‖ student) = Σ p_t (log p_t − log p_s)  (mode covering);
* :func:`reverse_kl` = KL(student ‖ teacher) = Σ p_s (log p_s − log p_t)  (mode seeking; the
  OPSD default);
* :func:`jsd` = generalised Jensen–Shannon divergence with weight ``beta`` on the teacher:
  M = β p_t + (1 − β) p_s and JSD_β = β KL(p_t ‖ M) + (1 − β) KL(p_s ‖ M). β = 0.5 is the
  symmetric JSD (bounded by log 2); as β → 0 it behaves like β·KL(teacher ‖ student) and as
  β → 1 like (1 − β)·KL(student ‖ teacher), both of which vanish at the end points, so β must
  lie strictly inside (0, 1).

:func:`topk_log_probs` restricts both distributions to the teacher's top-k tokens and
renormalises them, as OPSD's loss does.
"""

from __future__ import annotations

import math
from typing import Any

DIVERGENCE_NAMES = ("reverse_kl", "forward_kl", "jsd")


def kl(p_logp: Any, q_logp: Any) -> Any:
    """KL(p ‖ q) over the last axis from log-probabilities (0·log 0 taken as 0): the one KL of
    mixsd (training divergences, the drift measurement and MEMIT's KL term)."""
    import torch

    p = p_logp.exp()
    terms = p * (p_logp - q_logp)
    return torch.where(p > 0, terms, torch.zeros_like(terms)).sum(-1)


def forward_kl(student_logp: Any, teacher_logp: Any) -> Any:
    """KL(teacher ‖ student), per position."""
    return kl(teacher_logp, student_logp)


def reverse_kl(student_logp: Any, teacher_logp: Any) -> Any:
    """KL(student ‖ teacher), per position."""
    return kl(student_logp, teacher_logp)


def jsd(student_logp: Any, teacher_logp: Any, beta: float = 0.5) -> Any:
    """Generalised JSD with mixture M = beta·teacher + (1 − beta)·student, per position."""
    import torch

    if not 0.0 < beta < 1.0:
        raise ValueError(f"jsd beta must be in (0, 1), got {beta}")
    mixture_logp = torch.logsumexp(torch.stack([teacher_logp + math.log(beta),
                                                student_logp + math.log(1.0 - beta)]), dim=0)
    return beta * kl(teacher_logp, mixture_logp) + (1.0 - beta) * kl(student_logp, mixture_logp)


def get_divergence(name: str, *, beta: float = 0.5) -> Any:
    """The divergence function called ``name`` as ``fn(student_logp, teacher_logp)``."""
    if name == "forward_kl":
        return forward_kl
    if name == "reverse_kl":
        return reverse_kl
    if name == "jsd":
        return lambda s, t: jsd(s, t, beta)
    raise ValueError(f"unknown divergence {name!r}; choose from {', '.join(DIVERGENCE_NAMES)}")


def topk_log_probs(student_logits: Any, teacher_logits: Any, k: int) -> tuple[Any, Any]:
    """Both distributions restricted to the teacher's top-``k`` tokens, renormalised.

    Returns ``(student_logp, teacher_logp)`` of shape ``(..., k)``.
    """
    import torch

    k = min(k, teacher_logits.shape[-1])
    index = teacher_logits.topk(k, dim=-1).indices
    student = torch.log_softmax(student_logits.float().gather(-1, index), dim=-1)
    teacher = torch.log_softmax(teacher_logits.float().gather(-1, index), dim=-1)
    return student, teacher
