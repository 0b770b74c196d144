"""The slow, obviously correct MixSD loop the fused engine is tested against.

One job at a time, no padding, no cache: at each step the coin picks a conditional, a full
forward of that prompt (naive x or expert x+) followed by the shared prefix gives the
next-token logits, and the chosen token is appended to the prefix (docs/method.md, "The method").
For the paper's token unit the other conditional's logits are not needed, so they are not
computed; the word and span units look at both conditionals' next tokens first (the rule
needs them). It uses the same per-record draws as :mod:`mixsd.targets.engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixsd.targets.engine import (
    PROMPT_TOO_LONG,
    MixJob,
    MixOutput,
    MixSettings,
    finish,
    job_draws,
    reference_bigrams,
)
from mixsd.targets.sampling import select_tokens


def next_token_logits(model: Any, ids: Sequence[int]) -> Any:
    """Logits of the next token after ``ids`` (one row, full forward, no cache)."""
    import torch

    device = next(model.parameters()).device
    input_ids = torch.tensor([list(ids)], dtype=torch.long, device=device)
    mask = torch.ones_like(input_ids)
    return model(input_ids=input_ids, attention_mask=mask, use_cache=False).logits[0, -1]


def reference_generate_one(model: Any, job: MixJob, settings: MixSettings) -> MixOutput:
    """Generate one job step by step, recomputing both conditionals from scratch."""
    import torch

    budget = settings.token_budget(job)
    if budget == 0:
        return MixOutput([], "", PROMPT_TOO_LONG)
    draws = job_draws(job, settings)
    prefix: list[int] = []
    naive_flags: list[bool] = []
    with torch.inference_mode():
        for t in range(budget):
            coin, sample_u = float(draws[t, 0]), draws[t, 1:2]
            take_naive = coin < job.lambda_of(settings)
            if settings.mix_unit == "token":
                prompt = job.naive_ids if take_naive else job.expert_ids
                logits = next_token_logits(model, list(prompt) + prefix)
                token = int(select_tokens(logits.unsqueeze(0), sample_u, settings.temperature,
                                          settings.top_k)[0])
            else:
                take_naive, token = _unit_choice(model, job, settings, prefix, naive_flags,
                                                 take_naive, sample_u)
            prefix.append(token)
            naive_flags.append(take_naive)
            if token in settings.stop_token_ids:
                break
    return finish(prefix, naive_flags, settings.stop_token_ids, budget)


def reference_generate(
    model: Any, jobs: Sequence[MixJob], settings: MixSettings
) -> list[MixOutput]:
    """:func:`reference_generate_one` over ``jobs``, in order."""
    return [reference_generate_one(model, job, settings) for job in jobs]


def _unit_choice(model: Any, job: MixJob, settings: MixSettings, prefix: list[int],
                 naive_flags: list[bool], coin_naive: bool, sample_u: Any) -> tuple[bool, int]:
    """The word/span rule at one step, spelled out: (naive?, token)."""
    proposed = {}
    for naive, prompt in ((True, job.naive_ids), (False, job.expert_ids)):
        logits = next_token_logits(model, list(prompt) + prefix)
        proposed[naive] = int(select_tokens(logits.unsqueeze(0), sample_u,
                                            settings.temperature, settings.top_k)[0])
    if not prefix:
        take_naive = coin_naive  # the first token starts the first word
    else:
        current = naive_flags[-1]
        at_word_start = settings.starts_word(proposed[True]) and settings.starts_word(
            proposed[False])
        take_naive = coin_naive if at_word_start else current
        copying = (prefix[-1], proposed[False]) in reference_bigrams(job)
        if settings.mix_unit == "span" and copying:
            take_naive = False
    return take_naive, proposed[take_naive]
