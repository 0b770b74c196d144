"""Divergences against values computed by hand on two-token distributions.

p_student = (1/2, 1/2), p_teacher = (1/4, 3/4):
  KL(teacher||student) = 1/4 ln(1/2) + 3/4 ln(3/2)                     = 0.130812
  KL(student||teacher) = 1/2 ln 2 + 1/2 ln(2/3)                          = 0.143841
  JSD(beta=1/2): M = (3/8, 5/8);
     KL(t||M) = 1/4 ln(2/3) + 3/4 ln(6/5) = 0.035375,
     KL(s||M) = 1/2 ln(4/3) + 1/2 ln(4/5) = 0.032269  -> (0.035375 + 0.032269)/2 = 0.033822
  JSD(beta=1/4): M = 1/4 p_t + 3/4 p_s = (7/16, 9/16);
     KL(t||M) = 1/4 ln(4/7) + 3/4 ln(4/3) = 0.075858,
     KL(s||M) = 1/2 ln(8/7) + 1/2 ln(8/9) = 0.007874  -> 1/4*0.075858 + 3/4*0.007874 = 0.024870
"""

from __future__ import annotations

import math

import pytest
import torch

from mixsd.training.divergences import (
    forward_kl,
    get_divergence,
    jsd,
    reverse_kl,
    topk_log_probs,
)
from mixsd.training.opsd import opsd_loss

STUDENT = torch.tensor([0.5, 0.5]).log()
TEACHER = torch.tensor([0.25, 0.75]).log()


def test_forward_kl_is_kl_teacher_student():
    assert forward_kl(STUDENT, TEACHER).item() == pytest.approx(0.130812, abs=1e-6)


def test_reverse_kl_is_kl_student_teacher():
    assert reverse_kl(STUDENT, TEACHER).item() == pytest.approx(0.143841, abs=1e-6)


@pytest.mark.parametrize("beta, expected", [(0.5, 0.033822), (0.25, 0.024870)])
def test_generalised_jsd(beta, expected):
    assert jsd(STUDENT, TEACHER, beta).item() == pytest.approx(expected, abs=1e-6)


def test_jsd_beta_convention_weights_the_teacher():
    # Swapping the roles of student and teacher is the same as using 1 - beta.
    assert jsd(STUDENT, TEACHER, 0.25).item() == pytest.approx(
        jsd(TEACHER, STUDENT, 0.75).item(), abs=1e-7)
    assert jsd(STUDENT, TEACHER, 0.25).item() != pytest.approx(
        jsd(STUDENT, TEACHER, 0.75).item(), abs=1e-4)
    with pytest.raises(ValueError):
        jsd(STUDENT, TEACHER, 0.0)


def test_zero_probability_terms_count_as_zero():
    # KL(student||teacher) with p_s = (1, 0), p_t = (1/2, 1/2) is ln 2 (0 ln 0 = 0, no nan).
    student = torch.tensor([1.0, 0.0]).log()
    teacher = torch.tensor([0.5, 0.5]).log()
    assert reverse_kl(student, teacher).item() == pytest.approx(math.log(2), abs=1e-6)


def test_batched_shapes_and_named_lookup():
    s = torch.stack([STUDENT, TEACHER])[None]  # (1, 2, 2)
    t = torch.stack([TEACHER, TEACHER])[None]
    out = get_divergence("reverse_kl")(s, t)
    assert out.shape == (1, 2)
    assert out[0, 0].item() == pytest.approx(0.143841, abs=1e-6)
    assert out[0, 1].item() == pytest.approx(0.0, abs=1e-7)
    assert get_divergence("jsd", beta=0.25)(STUDENT, TEACHER).item() == pytest.approx(0.024870,
                                                                                   abs=1e-6)
    with pytest.raises(ValueError):
        get_divergence("tv")


def test_topk_restricts_to_teacher_top_tokens_and_renormalises():
    # teacher p = (0.5, 0.3, 0.2), k = 2 -> tokens {0, 1}, renormalised (0.625, 0.375);
    # student p = (0.1, 0.1, 0.8) on the same tokens -> (0.5, 0.5), token 2 is ignored.
    teacher_logits = torch.tensor([0.5, 0.3, 0.2]).log()
    student_logits = torch.tensor([0.1, 0.1, 0.8]).log() + 3.0  # logits: any shift
    s, t = topk_log_probs(student_logits, teacher_logits, 2)
    assert t.exp().tolist() == pytest.approx([0.625, 0.375], abs=1e-6)
    assert s.exp().tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    # forward KL on the restricted pair: 0.625 ln(1.25) + 0.375 ln(0.75) = 0.031584
    assert forward_kl(s, t).item() == pytest.approx(0.031584, abs=1e-6)


def test_opsd_loss_averages_over_rollout_tokens_only():
    teacher = torch.stack([TEACHER, TEACHER, TEACHER])[None]       # (1, 3, 2)
    student = torch.stack([STUDENT, TEACHER, STUDENT])[None]
    mask = torch.tensor([[True, True, False]])
    loss = opsd_loss(student, teacher, mask, reverse_kl, top_k=64)
    assert loss.item() == pytest.approx((0.143841 + 0.0) / 2, abs=1e-6)
