"""Batched greedy generation from prompt token ids, on any Hugging Face causal LM.

This is the plain ``model.generate`` path (left padding, KV cache) used by evaluation; the
MixSD engine has its own fused two-conditional loop in :mod:`mixsd.targets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tqdm.auto import tqdm


def pad_batch(batch: Sequence[Sequence[int]], pad_id: int, *, side: str = "left",
              device: Any = None) -> tuple[Any, Any]:
    """Pad token id lists into ``(input_ids, attention_mask)`` tensors: the one padding rule.

    ``side="left"`` for generation (every row ends at the last column), ``"right"`` where
    absolute positions must stay where they are (scoring, MEMIT keys, OPSD rollouts).
    """
    import torch

    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', not {side!r}")
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, ids in enumerate(batch):
        if ids:
            cols = slice(width - len(ids), width) if side == "left" else slice(0, len(ids))
            input_ids[i, cols] = torch.tensor(list(ids), dtype=torch.long)
            mask[i, cols] = 1
    if device is not None:
        input_ids, mask = input_ids.to(device), mask.to(device)
    return input_ids, mask


def left_pad(batch: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """Left-pad token id lists into ``(input_ids, attention_mask)`` tensors."""
    return pad_batch(batch, pad_id, side="left")


def right_pad(batch: Sequence[Sequence[int]], pad_id: int, device: Any = None
              ) -> tuple[Any, Any]:
    """Right-pad token id lists into ``(input_ids, attention_mask)`` (on ``device``)."""
    return pad_batch(batch, pad_id, side="right", device=device)


def pad_token_id(tokenizer: Any) -> int:
    """The one padding rule: the tokenizer's pad token; without one, its EOS (what the loaders
    set as the pad token, :func:`mixsd.models.load_tokenizer`); without either, 0. Padded
    positions are masked, so the id only has to be a valid one."""
    for value in (tokenizer.pad_token_id, getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            return value
    return 0


def greedy_generate(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *,
                    max_new_tokens: int, stop_token_ids: set[int] | None = None,
                    batch_size: int = 32, desc: str | None = None) -> list[list[int]]:
    """Greedy continuation ids for each prompt (stop token excluded), in input order.

    Prompts are sorted by length into batches to limit padding; results do not depend on the
    batch size (each row gets the logits it would get alone, up to float rounding).
    """
    import torch

    stops = set(stop_token_ids or {tokenizer.eos_token_id})
    pad_id = pad_token_id(tokenizer)
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
