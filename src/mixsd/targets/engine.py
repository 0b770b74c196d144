"""The fused MixSD engine: both conditionals of every active record in ONE forward per step.

Each record has a naive row (prompt x) and an expert row (prompt x+); both rows share the
generated prefix y_<t. Rows are left-padded into one batch (naive rows first, expert rows
after) with an attention mask and position ids ``cumsum(mask) - 1``, so every row gets the
logits it would get alone (RoPE and absolute-position models alike). One KV cache
(transformers' ``DynamicCache``) holds all rows; a record's rows leave the batch and the
cache (index ops) as soon as it stops. At step t the record's coin picks the row whose
logits give y_t (method.md, "The method"); :mod:`mixsd.targets.reference` is the slow,
obviously correct version of this loop and the tests hold them equal token for token.

Mixing units (``MixSettings.mix_unit``, method.md "Beyond the paper"):

* ``token`` — the paper: a fresh coin at every token.
* ``word`` — a fresh coin only where the next token of both conditionals starts a word
  (:mod:`mixsd.targets.words`); elsewhere the source that began the current word goes on,
  so a naive token never lands in the middle of a name or a number (had only the current
  source's token started a word, switching could glue the other's continuation onto it).
* ``span`` — the word unit, except that wherever the expert is copying the reference answer
  (the previous token and the expert's next token are consecutive tokens of y*), the expert
  token is taken without a coin: a name or key the expert reproduces stays whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mixsd.generation import cache_keyword, left_pad
from mixsd.targets import jobs as mixjobs
from mixsd.targets.jobs import (  # noqa: F401 - the engine's public names
    MAX_LENGTH,
    PROMPT_TOO_LONG,
    STOP,
    MixJob,
    MixOutput,
    MixSettings,
    finish,
    job_draws,
    reference_bigrams,
)
from mixsd.targets.kvcache import left_pad_to, preallocate
from mixsd.targets.sampling import select_tokens
from mixsd.targets.stream import NotSlottable, stream_generate


def mix_generate(model: Any, jobs: Sequence[MixJob], settings: MixSettings) -> list[MixOutput]:
    """Generate every job with the fused two-conditional loop; outputs in job order."""
    import torch

    outputs: list[MixOutput | None] = [None] * len(jobs)
    live = []
    for i, job in enumerate(jobs):
        if settings.token_budget(job) == 0:
            outputs[i] = MixOutput([], "", PROMPT_TOO_LONG)
        else:
            live.append(i)
    if live:
        was_training = model.training
        model.eval()  # the frozen base model: dropout off, or targets would not be reproducible
        try:
            with torch.inference_mode():
                results = _generate_live(model, [jobs[i] for i in live], settings)
        finally:
            model.train(was_training)
        for i, out in zip(live, results, strict=True):
            outputs[i] = out
    return outputs  # type: ignore[return-value]


def _generate_live(model: Any, jobs: Sequence[MixJob], settings: MixSettings
                   ) -> list[MixOutput]:
    """The slot engine (:mod:`mixsd.targets.stream`) where the model's cache allows it (plain
    ``DynamicCache`` layers), else the static loop below."""
    try:
        return stream_generate(model, jobs, settings, compact=settings.drop_finished)
    except NotSlottable:
        return _fused_loop(model, jobs, settings)


def _forward_prompts(model: Any, prompts: Sequence[Sequence[int]], pad_id: int, device: Any):
    """Left-padded forward with position ids ``cumsum(mask) - 1``; last logits and the cache."""
    input_ids, mask = left_pad(prompts, pad_id)
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp_(min=0)
    out = model(
        input_ids=input_ids,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    return out.logits[:, -1, :], getattr(out, cache_keyword()), mask, positions[:, -1:].clone()


def _prefill(model: Any, jobs: Sequence[MixJob], settings: MixSettings, device: Any):
    """Prompt forwards for naive rows 0..B-1 and expert rows B..2B-1, in one cache.

    Naive prompts are shorter than expert ones, so padding them to the expert width would
    waste most of the naive forward: each kind is run at its own width and the naive cache
    is then left-padded (masked zeros) and joined to the expert cache. Caches of other kinds
    (sliding windows, ...) take one forward over all rows at the common width instead.
    """
    import torch

    naive = _forward_prompts(model, [j.naive_ids for j in jobs], settings.pad_id, device)
    if not mixjobs.plain_dynamic(naive[1]):
        rows = [j.naive_ids for j in jobs] + [j.expert_ids for j in jobs]
        return _forward_prompts(model, rows, settings.pad_id, device)
    expert = _forward_prompts(model, [j.expert_ids for j in jobs], settings.pad_id, device)
    width = max(naive[2].shape[1], expert[2].shape[1])
    cache = expert[1]
    for joined, first in zip(cache.layers, naive[1].layers, strict=True):
        joined.keys = torch.cat(
            [left_pad_to(first.keys, width, -2), left_pad_to(joined.keys, width, -2)]
        )
        joined.values = torch.cat(
            [left_pad_to(first.values, width, -2), left_pad_to(joined.values, width, -2)]
        )
    mask = torch.cat([left_pad_to(naive[2], width, -1), left_pad_to(expert[2], width, -1)])
    return (torch.cat([naive[0], expert[0]]), cache, mask, torch.cat([naive[3], expert[3]]))


def _fused_loop(model: Any, jobs: Sequence[MixJob], settings: MixSettings) -> list[MixOutput]:
    import torch

    device = next(model.parameters()).device
    logits, cache, mask, last_pos = _prefill(model, jobs, settings, device)
    n_jobs = len(jobs)
    steps = max(settings.token_budget(j) for j in jobs)
    if mixjobs.plain_dynamic(cache):
        preallocate(cache, steps)  # no per-step re-allocation of the cache
    draws = torch.stack([job_draws(j, settings) for j in jobs])[:, :steps].to(device)
    lambdas = torch.tensor([j.lambda_of(settings) for j in jobs], dtype=draws.dtype,
                           device=device)
    budget = torch.tensor([settings.token_budget(j) for j in jobs], device=device)
    stops = torch.tensor(sorted(settings.stop_token_ids), dtype=torch.long, device=device)
    tokens = torch.zeros((n_jobs, steps), dtype=torch.long, device=device)
    took_naive = torch.zeros((n_jobs, steps), dtype=torch.bool, device=device)
    lengths = torch.full((n_jobs,), steps, dtype=torch.long, device=device)
    active = torch.arange(n_jobs, device=device)  # job index of each active record
    finished = torch.zeros(n_jobs, dtype=torch.bool, device=device)
    # The mask grows in place: allocate its full width once (no per-step re-allocation).
    width = mask.shape[1]
    full_mask = torch.ones((2 * n_jobs, width + steps), dtype=mask.dtype, device=device)
    full_mask[:, :width] = mask
    unit = _UnitState(jobs, settings, logits.shape[-1], device) if (
        settings.mix_unit != "token") else None
    for t in range(steps):
        n = active.shape[0]
        step_draws = draws[active, t]
        naive = step_draws[:, 0] < lambdas[active]
        if unit is None:  # the paper's rule: the coin alone picks the row
            chosen = torch.where(naive.unsqueeze(-1), logits[:n], logits[n:])
            tok = select_tokens(chosen, step_draws[:, 1], settings.temperature, settings.top_k)
        else:
            naive, tok = unit.step(t, active, naive, logits, step_draws[:, 1], tokens)
        tokens[active, t] = tok
        took_naive[active, t] = naive
        done = budget[active] <= t + 1
        if stops.numel():
            done |= torch.isin(tok, stops)
        if not settings.drop_finished:
            done &= ~finished[active]
        if bool(done.any()):
            lengths[active[done]] = t + 1
            finished[active[done]] = True
            if bool(finished.all()):
                break
            if settings.drop_finished:  # finished rows leave the batch and the cache (by index)
                keep = (~done).nonzero().squeeze(-1)
                rows = torch.cat([keep, keep + n])
                cache.batch_select_indices(rows)
                full_mask, last_pos = full_mask[rows], last_pos[rows]
                active, tok = active[keep], tok[keep]
        last_pos = last_pos + 1
        out = model(
            input_ids=torch.cat([tok, tok]).unsqueeze(-1),
            attention_mask=full_mask[:, : width + t + 1],
            position_ids=last_pos,
            use_cache=True,
            **{cache_keyword(): cache},
        )
        logits = out.logits[:, -1, :]
    return _collect(tokens, took_naive, lengths, jobs, settings)


class _UnitState:
    """Per-record state of the word and span units inside the fused loop."""

    def __init__(self, jobs: Sequence[MixJob], settings: MixSettings, vocab: int, device: Any):
        import torch

        self.settings, self.vocab = settings, vocab
        starts = torch.ones(vocab, dtype=torch.bool)
        if settings.word_starts is not None:
            table = settings.word_starts[:vocab]
            starts[: len(table)] = table
        self.starts = starts.to(device)
        self.current = torch.zeros(len(jobs), dtype=torch.bool, device=device)  # naive source?
        self.codes = None
        if settings.mix_unit == "span":
            pairs = [sorted(reference_bigrams(j)) for j in jobs]
            width = max(1, max(len(p) for p in pairs))
            codes = torch.full((len(jobs), width), -1, dtype=torch.long)
            for i, p in enumerate(pairs):
                if p:
                    codes[i, : len(p)] = torch.tensor([a * vocab + b for a, b in p])
            self.codes = codes.to(device)

    def step(self, t: int, active: Any, coin: Any, logits: Any, uniforms: Any, tokens: Any):
        """(naive?, token) of every active record at step ``t`` (see the module docstring)."""
        import torch

        s = self.settings
        n = active.shape[0]
        both = select_tokens(logits, uniforms.repeat(2), s.temperature, s.top_k)
        naive_tok, expert_tok = both[:n], both[n:]
        if t == 0:
            naive = coin
        else:
            current = self.current[active]
            boundary = self.starts[naive_tok] & self.starts[expert_tok]
            naive = torch.where(boundary, coin, current)
            if self.codes is not None:
                code = tokens[active, t - 1] * self.vocab + expert_tok
                naive = naive & ~(self.codes[active] == code.unsqueeze(-1)).any(-1)
        self.current[active] = naive
        return naive, torch.where(naive, naive_tok, expert_tok)


def _collect(
    tokens: Any, took_naive: Any, lengths: Any, jobs: Sequence[MixJob], settings: MixSettings
) -> list[MixOutput]:
    token_rows, naive_rows, length_list = tokens.tolist(), took_naive.tolist(), lengths.tolist()
    return [
        finish(
            token_rows[i][: length_list[i]],
            naive_rows[i],
            settings.stop_token_ids,
            settings.token_budget(job),
        )
        for i, job in enumerate(jobs)
    ]
