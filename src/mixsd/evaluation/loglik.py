"""Log-likelihood of continuations given contexts: the one scoring loop of evaluation/analysis.

Used by multiple-choice suites (log-likelihood of each choice) and by the target-NLL analysis
(per-token NLL of a target given the naive prompt). Rows are right-padded, so a row's logits
do not depend on the others in its batch (up to float rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm

from mixsd.errors import MixsdError
from mixsd.generation import pad_batch
from mixsd.models import context_length


def _fit(context: list[int], continuation: list[int], limit: int | None) -> list[int]:
    """Drop context tokens from the left so that ``context + continuation`` fits the model."""
    if limit is None or len(context) + len(continuation) <= limit:
        return context
    keep = limit - len(continuation)
    if keep < 1:
        raise MixsdError(f"a continuation of {len(continuation)} tokens does not fit the model's "
                         f"context of {limit} tokens")
    return context[-keep:]


def continuation_logprobs(model: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                          batch_size: int = 8, pad_id: int = 0,
                          desc: str | None = None) -> list[list[float]]:
    """Per-token log-probabilities ``log p(c_t | context, c_<t)`` of each continuation.

    Args:
        model: a causal LM (its parameters' device is used).
        pairs: ``(context ids, continuation ids)``; the context must be non-empty.
        batch_size: rows per forward pass.
        pad_id: id written into padding positions (masked, so its value does not matter).

    Returns one list per pair, in input order, with one float per continuation token.
    """
    import torch

    device = next(model.parameters()).device
    limit = context_length(model)
    seqs = []
    for ctx, cont in pairs:
        if not ctx:
            raise MixsdError("a continuation needs a non-empty context (e.g. BOS)")
        ctx = _fit(list(ctx), list(cont), limit)
        seqs.append((ctx, list(cont)))
    order = sorted(range(len(seqs)), key=lambda i: -(len(seqs[i][0]) + len(seqs[i][1])))
    out: list[list[float]] = [[] for _ in seqs]
    bar = tqdm(total=len(seqs), desc=desc or "score", unit="seq", leave=False, disable=desc is None)
    for start in range(0, len(order), batch_size):
        idx = [i for i in order[start:start + batch_size] if seqs[i][1]]
        if not idx:
            bar.update(min(batch_size, len(order) - start))
            continue
        input_ids, mask = pad_batch([seqs[i][0] + seqs[i][1] for i in idx], pad_id, side="right")
        with torch.no_grad():
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        for r, i in enumerate(idx):
            ctx, cont = seqs[i]
            # Only the continuation's positions: no (batch, length, vocab) float32 copy.
            rows = logits[r, len(ctx) - 1:len(ctx) + len(cont) - 1].float()
            tgt = torch.tensor(cont, dtype=torch.long, device=rows.device)
            out[i] = torch.log_softmax(rows, dim=-1).gather(1, tgt[:, None])[:, 0].tolist()
        bar.update(len(order[start:start + batch_size]))
    bar.close()
    return out
