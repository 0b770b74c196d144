"""Batched greedy generation from prompt token ids, on any Hugging Face causal LM.

This is the greedy path used by evaluation (left padding, KV cache): a loop of our own that
drops each row from the batch, and its KV cache, once it has stopped
(:func:`greedy_generate`), with ``model.generate`` as its reference
(:func:`generate_reference`, and the fallback for a model whose generation config changes
greedy decoding or whose cache cannot drop rows). The MixSD engine has its own fused
two-conditional loop in :mod:`mixsd.targets`.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=1)
def cache_keyword() -> str:
    """The name of the KV-cache argument and output field (``cache`` since transformers 5.2x)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    fields = getattr(CausalLMOutputWithPast, "__dataclass_fields__", {})
    return "cache" if "cache" in fields else "past_key_values"


# Generation-config fields that change what greedy decoding picks (with the value that does
# not): a model that sets one of them is decoded by ``model.generate`` itself.
_GREEDY_NEUTRAL = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
                   "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None,
                   "min_length": 0, "min_new_tokens": None, "suppress_tokens": None,
                   "begin_suppress_tokens": None, "forced_bos_token_id": None,
                   "forced_eos_token_id": None, "sequence_bias": None,
                   "exponential_decay_length_penalty": None, "renormalize_logits": False,
                   "diversity_penalty": 0.0, "num_beams": 1}


def drops_rows(model: Any) -> bool:
    """Whether :func:`greedy_generate` may run its own loop on ``model``: a decoder whose
    generation config leaves greedy decoding as it is (no repetition penalty, no forced or
    suppressed tokens, one beam)."""
    config = getattr(model, "generation_config", None)
    if config is None:  # not a transformers generator: its own generate decides
        return False
    for name, neutral in _GREEDY_NEUTRAL.items():
        value = getattr(config, name, neutral)
        if value not in (neutral, None):
            return False
    return not getattr(getattr(model, "config", None), "is_encoder_decoder", False)
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
    batch size (each row gets the logits it would get alone, up to float rounding). A row
    leaves its batch, with its KV cache, at its stop token, so a batch costs the tokens its
    rows generate, not its longest row times its size. Equal to :func:`generate_reference`
    (``model.generate``; a test holds them equal), which decodes a model this loop does not
    cover (:func:`drops_rows`)."""
    if not drops_rows(model):
        return generate_reference(model, tokenizer, prompts, max_new_tokens=max_new_tokens,
                                  stop_token_ids=stop_token_ids, batch_size=batch_size,
                                  desc=desc)
    return _batched(model, tokenizer, prompts, max_new_tokens, stop_token_ids, batch_size, desc,
                    _decode_dropping)


def generate_reference(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], *,
                       max_new_tokens: int, stop_token_ids: set[int] | None = None,
                       batch_size: int = 32, desc: str | None = None) -> list[list[int]]:
    """:func:`greedy_generate` by ``model.generate`` (every row of a batch runs until the
    last one stops): the reference, and the path of models the own loop does not cover."""
    return _batched(model, tokenizer, prompts, max_new_tokens, stop_token_ids, batch_size, desc,
                    _decode_generate)


def _batched(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int,
             stop_token_ids: set[int] | None, batch_size: int, desc: str | None,
             decode: Any) -> list[list[int]]:
    """Length-sorted batches of ``prompts`` through ``decode``; outputs in input order."""
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
            rows = decode(model, input_ids.to(device), mask.to(device), max_new_tokens, stops,
                          pad_id)
        for row, i in enumerate(idx):
            ids = rows[row]
            cut = next((j for j, t in enumerate(ids) if t in stops), len(ids))
            out[i] = ids[:cut]
        bar.update(len(idx))
    bar.close()
    return out


def _decode_generate(model: Any, input_ids: Any, mask: Any, max_new_tokens: int,
                     stops: set[int], pad_id: int) -> list[list[int]]:
    gen = model.generate(input_ids=input_ids, attention_mask=mask,
                         max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=sorted(stops), pad_token_id=pad_id,
                         temperature=None, top_p=None, top_k=None)
    return gen[:, input_ids.shape[1]:].tolist()


def _decode_dropping(model: Any, input_ids: Any, mask: Any, max_new_tokens: int,
                     stops: set[int], pad_id: int) -> list[list[int]]:
    """Greedy decoding of a left-padded batch; a row that emits a stop token (kept, as
    ``generate`` keeps it) leaves the batch and the cache before the next step."""
    import torch

    positions = mask.long().cumsum(-1) - 1
    positions.masked_fill_(mask == 0, 1)  # as generate does; padded positions are masked
    keyword = cache_keyword()
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                use_cache=True, logits_to_keep=1)
    cache = getattr(out, keyword)
    rows: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    live = list(range(input_ids.shape[0]))
    last = positions[:, -1:]
    stop = torch.tensor(sorted(stops), device=input_ids.device)
    for step in range(max_new_tokens):
        token = out.logits[:, -1, :].argmax(-1)
        for row, t in zip(live, token.tolist()):
            rows[row].append(t)
        going = ~torch.isin(token, stop)
        if step + 1 == max_new_tokens or not bool(going.any()):
            break
        # A cache that cannot drop rows keeps them: their tokens after the stop are cut.
        if not bool(going.all()) and hasattr(cache, "batch_select_indices"):
            keep = going.nonzero().flatten()
            cache.batch_select_indices(keep)
            live = [live[j] for j in keep.tolist()]
            token, mask, last = token[keep], mask[keep], last[keep]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        last = last + 1
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=last,
                    use_cache=True, **{keyword: cache})
    return rows
