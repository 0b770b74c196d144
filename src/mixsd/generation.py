"""Batched greedy generation from prompt token ids, on any Hugging Face causal LM.

This is the plain ``model.generate`` path (left padding, KV cache) used by evaluation; the
MixSD engine has its own fused two-conditional loop in :mod:`mixsd.targets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm


def left_pad(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Left-pad token id lists into ``(input_ids, attention_mask)`` tensors."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        if ids:
            input_ids[i, width - len(ids):] = torch.tensor(list(ids), dtype=torch.long)
            mask[i, width - len(ids):] = 1
    return input_ids, mask


def greedy_generate(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *,
                    max_new_tokens: int, stop_token_ids: set[int] | None = None,
                    batch_size: int = 32, desc: str | None = None) -> list[list[int]]:
    """Greedy continuation ids for each prompt (stop token excluded), in input order.

    Prompts are sorted by length into batches to limit padding; results do not depend on the
    batch size (each row gets the logits it would get alone, up to float rounding).
    """
    import torch

    stops = set(stop_token_ids or {tokenizer.eos_token_id})
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stops)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    device = next(model.parameters()).device
    bar = tqdm(total=len(prompts), desc=desc or "generate", unit="prompt", leave=False,
               disable=desc is None)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        input_ids, mask = left_pad([prompts[i] for i in idx], pad_id)
        with torch.no_grad():
            gen = model.generate(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=sorted(stops), pad_token_id=pad_id,
                                 temperature=None, top_p=None, top_k=None)
        for row, i in enumerate(idx):
            ids = gen[row, input_ids.shape[1]:].tolist()
            cut = next((j for j, t in enumerate(ids) if t in stops), len(ids))
            out[i] = ids[:cut]
        bar.update(len(idx))
    bar.close()
    return out
