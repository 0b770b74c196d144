"""Continuous batching for the fused engine: slots that are refilled while the others run.

:class:`MixStream` keeps a fixed number of slots; each slot is one record's attempt, a naive
row and an expert row (naive rows ``0..R-1``, expert rows ``R..2R-1``), and every step is one
forward over all rows, as in :func:`mixsd.targets.engine.mix_generate`. What differs is that a
slot whose attempt ends (stop token or budget) is free at once: the caller verifies the attempt
and :meth:`MixStream.admit` puts the next attempt (a retry, or a new record) into the slot
before the next step, while the other slots' caches stay where they are.

How a slot joins without touching the others:

* All rows share one time axis of the KV cache (``length`` columns written). A joining row's
  prompt is written right-aligned just before the next column (its other columns are masked),
  so the shared forward appends the next column for every row. Positions are each row's own
  (``len(prompt) - 1 + t``), so a row gets the logits it would get alone (RoPE and absolute
  positions alike), whatever its column.
* A prompt's cache holds all but its last token: that token is the row's input at its first
  step, so no separate forward is needed for the first logits, and a retry of the same record
  reuses the prompt caches (``key`` in :meth:`admit`) with no prefill at all.
* The cache is one buffer ``[layers, rows, heads, capacity, head_dim]`` for keys (and one for
  values); the layers of the model's ``DynamicCache`` are views of it over the live window
  ``[start, length)`` (``start`` = the first column a live row uses). When the buffer is full
  the live window is moved to the front (a copy every ~``prompt + max_new_tokens`` steps), and
  when half the slots are empty with nothing to refill them, the rows are compacted.

Targets depend on (seed, record id, attempt) only: draws come from
:func:`mixsd.targets.sampling.record_draws`, and the token rule is the reference's
(:mod:`mixsd.targets.reference`), per slot.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers.cache_utils import DynamicLayer

from mixsd.generation import cache_keyword, left_pad
from mixsd.targets import jobs as mixjobs
from mixsd.targets.jobs import (
    PROMPT_TOO_LONG,
    MixJob,
    MixOutput,
    MixSettings,
    finish,
    job_draws,
    reference_bigrams,
)
from mixsd.targets.kvcache import left_pad_to
from mixsd.targets.sampling import select_tokens


def common_prefix(prompts: Sequence[Sequence[int]]) -> list[int]:
    """The longest list of token ids that every one of ``prompts`` starts with."""
    first = list(prompts[0]) if prompts else []
    for prompt in prompts[1:]:
        n = 0
        while n < len(first) and n < len(prompt) and first[n] == prompt[n]:
            n += 1
        first = first[:n]
    return first


class NotSlottable(Exception):
    """The model's cache is not a plain ``DynamicCache`` of uniform layers (sliding windows,
    mixed head counts, ...): use the static engine instead."""


@dataclass
class _Prompts:
    """The cached K/V ``[layers, heads, len - 1, head_dim]`` of a record's two prompts."""

    naive_keys: Any
    naive_values: Any
    expert_keys: Any
    expert_values: Any


@dataclass
class _Slot:
    tag: Any
    job: MixJob
    budget: int
    mix_lambda: float
    temperature: float
    coins: list[float]
    uniforms: Any  # float32 [steps]
    feed: tuple[int, int]  # the next input token of the naive and the expert row
    position: tuple[int, int]  # and their positions
    start: int  # the first cache column either row uses
    tokens: list[int] = field(default_factory=list)
    naive: list[bool] = field(default_factory=list)
    bigrams: set[tuple[int, int]] = field(default_factory=set)


class _SlotLayer(DynamicLayer):
    """One layer of the model's cache: a view of the stream's buffer over the live window."""

    def __init__(self, stream: MixStream, index: int):
        super().__init__()
        self.stream, self.index, self.is_initialized = stream, index, True
        self.expose()

    def expose(self) -> None:
        s = self.stream
        self.keys = s.keys[self.index, :, :, s.start : s.length]
        self.values = s.values[self.index, :, :, s.start : s.length]
        self.device = s.keys.device

    def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any):
        s = self.stream
        s.keys[self.index, :, :, s.length] = key_states[:, :, -1]
        s.values[self.index, :, :, s.length] = value_states[:, :, -1]
        return (s.keys[self.index, :, :, s.start : s.length + 1],
                s.values[self.index, :, :, s.start : s.length + 1])

    def batch_select_indices(self, indices: Any) -> None:
        raise NotImplementedError("the stream owns its rows (MixStream._compact)")


class MixStream:
    """The fused MixSD loop over ``slots`` slots that the caller refills (module docstring).

    ``admit`` takes ``(tag, job, key)`` triples (``key``: the identity of the job's prompts
    for the prompt cache, ``None`` to not keep them); ``step`` runs one forward and returns
    ``(tag, output)`` for each attempt that ended. ``compact=False`` keeps empty slots in the
    batch (only for measuring what compacting saves); ``share_prefixes=False`` prefills every
    prompt whole instead of sharing common prefixes (see :meth:`_prefill`).
    """

    def __init__(self, model: Any, settings: MixSettings, slots: int, compact: bool = True,
                 share_prefixes: bool = True):
        self.model, self.settings, self.max_slots, self.compact = model, settings, slots, compact
        self.share_prefixes = share_prefixes
        self.device = next(model.parameters()).device
        self.slots: list[_Slot | None] = []
        self.prompts: dict[Hashable, _Prompts] = {}
        self.keys = self.values = self.mask = self.cache = None
        self.start = self.length = 0
        self.longest_prefix = 0  # the longest prompt (minus its last token) admitted so far
        self.ready: list[tuple[Any, MixOutput]] = []  # outputs that needed no slot
        self.stops = settings.stop_token_ids

    # -- the caller's view -------------------------------------------------------------
    def free_slots(self) -> int:
        return self.max_slots - sum(s is not None for s in self.slots)

    def busy(self) -> bool:
        return bool(self.ready) or any(s is not None for s in self.slots)

    def forget(self, key: Hashable) -> None:
        """Drop the cached prompts of ``key`` (its record is done)."""
        self.prompts.pop(key, None)

    def admit(self, items: Sequence[tuple[Any, MixJob, Hashable | None]]) -> None:
        """Put each job into a free slot (at most :meth:`free_slots` of them)."""
        if len(items) > self.free_slots():
            raise ValueError(f"{len(items)} jobs for {self.free_slots()} free slots")
        todo = [(tag, job, key if key is not None else ("job", i))
                for i, (tag, job, key) in enumerate(items) if self._budget(tag, job)]
        if not todo:
            return
        missing = {key: job for _, job, key in todo if key not in self.prompts}
        if missing:
            self._prefill(missing)
        prompts = [self.prompts[key] for _, _, key in todo]
        for p in prompts:
            self.longest_prefix = max(self.longest_prefix, p.naive_keys.shape[-2],
                                      p.expert_keys.shape[-2])
        grow = len(todo) - self.slots.count(None)
        if grow > 0:
            self._reshape([*range(len(self.slots)), *[None] * grow])
        self._reserve(max(max(p.naive_keys.shape[-2], p.expert_keys.shape[-2])
                          for p in prompts))
        for (tag, job, key), p in zip(todo, prompts, strict=True):
            self._place(tag, job, p)
            if isinstance(key, tuple) and key[:1] == ("job",):
                del self.prompts[key]

    def step(self) -> list[tuple[Any, MixOutput]]:
        """One forward over every slot; the attempts that ended, as ``(tag, output)``."""
        import torch

        ended, self.ready = self.ready, []
        live = [i for i, s in enumerate(self.slots) if s is not None]
        if not live:
            return ended
        if self.compact and 2 * (len(self.slots) - len(live)) >= len(self.slots):
            self._reshape(live)
            live = list(range(len(live)))
        self._reserve(0)
        rows = len(self.slots)
        ids, positions = [self.settings.pad_id] * (2 * rows), [0] * (2 * rows)
        for i in live:
            slot = self.slots[i]
            ids[i], ids[rows + i] = slot.feed
            positions[i], positions[rows + i] = slot.position
        self.start = min(self.slots[i].start for i in live)
        self.mask[:, self.length] = 1
        for layer in self.cache.layers:
            layer.expose()
        out = self.model(
            input_ids=torch.tensor(ids, device=self.device).unsqueeze(-1),
            attention_mask=self.mask[:, self.start : self.length + 1],
            position_ids=torch.tensor(positions, device=self.device).unsqueeze(-1),
            use_cache=True,
            **{cache_keyword(): self.cache},
        )
        self.length += 1
        return ended + self._choose(live, out.logits[:, -1, :])

    # -- admission ---------------------------------------------------------------------
    def _budget(self, tag: Any, job: MixJob) -> int:
        budget = self.settings.token_budget(job)
        if budget == 0:
            self.ready.append((tag, MixOutput([], "", PROMPT_TOO_LONG)))
        return budget

    def _prefill(self, jobs: dict[Hashable, MixJob]) -> None:
        """Cache both prompts (all but their last token) of ``jobs``, sharing their prefixes.

        Prompts repeat their starts: every prompt of a batch opens with the same chat header
        (system prompt, ...), and a record's naive prompt is most of its expert prompt's start
        when the guidance puts the question before the context. The common header is run
        once, each expert prompt from the header's end, and each naive prompt from where it
        leaves its expert prompt: the same tokens at the same positions, so the same keys and
        values (up to the float rounding of another batch shape) for much less prefill.
        ``share_prefixes=False`` runs every prompt whole (the reference of the tests).
        """
        naive = [j.naive_ids[:-1] for j in jobs.values()]
        expert = [j.expert_ids[:-1] for j in jobs.values()]
        if not self.share_prefixes:
            naive_kv, expert_kv = self._forward_prefixes(naive), self._forward_prefixes(expert)
        else:
            head = common_prefix(naive + expert)
            expert_kv = self._extend([self._forward_prefixes([head])[0]] * len(expert),
                                     [e[len(head):] for e in expert]) if head else (
                self._forward_prefixes(expert))
            shared = [len(common_prefix([n, e])) for n, e in zip(naive, expert, strict=True)]
            naive_kv = self._extend(
                [(k[:, :, :c], v[:, :, :c]) for (k, v), c in zip(expert_kv, shared, strict=True)],
                [n[c:] for n, c in zip(naive, shared, strict=True)])
        for b, key in enumerate(jobs):
            self.prompts[key] = _Prompts(*naive_kv[b], *expert_kv[b])

    def _extend(self, pasts: list[tuple[Any, Any]], tails: list[Sequence[int]]
                ) -> list[tuple[Any, Any]]:
        """Each row's ``(keys, values)`` ``[layers, heads, n, dim]`` continued by its ``tails``
        tokens (positions ``n, n + 1, ...``), in one left-padded forward over the rows."""
        import torch
        from transformers.cache_utils import DynamicCache

        if not any(tails):
            return [(k.clone(), v.clone()) for k, v in pasts]
        if not any(k.shape[-2] for k, _ in pasts):
            return self._forward_prefixes(tails)
        lengths = [k.shape[-2] for k, _ in pasts]
        width = max(lengths)
        keys = torch.stack([left_pad_to(k, width) for k, _ in pasts], dim=1)
        values = torch.stack([left_pad_to(v, width) for _, v in pasts], dim=1)
        past_mask = torch.tensor([[0] * (width - n) + [1] * n for n in lengths],
                                 dtype=torch.long, device=self.device)
        input_ids, tail_mask = left_pad(tails, self.settings.pad_id)
        input_ids, tail_mask = input_ids.to(self.device), tail_mask.to(self.device)
        start = torch.tensor(lengths, device=self.device).unsqueeze(-1)
        cache = DynamicCache()
        for layer, (k, v) in enumerate(zip(keys, values, strict=True)):
            cache.update(k, v, layer)
        out = self.model(input_ids=input_ids,
                         attention_mask=torch.cat([past_mask, tail_mask], dim=-1),
                         position_ids=(start + tail_mask.cumsum(-1) - 1).clamp_(min=0),
                         use_cache=True, logits_to_keep=1, **{cache_keyword(): cache})
        cache = getattr(out, cache_keyword())
        keys = torch.stack([layer.keys for layer in cache.layers])
        values = torch.stack([layer.values for layer in cache.layers])
        total = keys.shape[-2]
        return [(torch.cat([keys[:, b, :, width - n : width], keys[:, b, :, total - len(t):]],
                           dim=-2),
                 torch.cat([values[:, b, :, width - n : width],
                            values[:, b, :, total - len(t):]], dim=-2))
                for b, (n, t) in enumerate(zip(lengths, tails, strict=True))]

    def _forward_prefixes(self, prefixes: list[Sequence[int]]) -> list[tuple[Any, Any]]:
        """Left-padded forward of ``prefixes``; each row's unpadded ``(keys, values)``."""
        import torch

        width = max(len(p) for p in prefixes)
        if width == 0:
            if self.keys is None:  # the shapes come from a forward; make one
                self._forward_prefixes([[self.settings.pad_id]])
            empty = self.keys.new_zeros((self.keys.shape[0], self.keys.shape[2], 0,
                                         self.keys.shape[4]))
            return [(empty, empty)] * len(prefixes)
        input_ids, mask = left_pad(prefixes, self.settings.pad_id)
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        out = self.model(input_ids=input_ids, attention_mask=mask,
                         position_ids=(mask.cumsum(-1) - 1).clamp_(min=0), use_cache=True,
                         logits_to_keep=1)
        cache = getattr(out, cache_keyword())
        if not mixjobs.plain_dynamic(cache) or len({layer.keys.shape for layer in cache.layers}
                                                     | {layer.values.shape[:-1] + (
                                                         layer.keys.shape[-1],)
                                                        for layer in cache.layers}) != 1:
            raise NotSlottable(type(cache).__name__)
        keys = torch.stack([layer.keys for layer in cache.layers])
        values = torch.stack([layer.values for layer in cache.layers])
        if self.keys is None:
            self._allocate(keys, values)
        return [(keys[:, b, :, width - len(p):].clone(), values[:, b, :, width - len(p):].clone())
                for b, p in enumerate(prefixes)]

    def _allocate(self, keys: Any, values: Any) -> None:
        """Empty buffers (no rows, no columns) shaped like a prefill's stacked K/V."""
        import torch
        from transformers.cache_utils import DynamicCache

        layers, _, heads, _, dim = keys.shape
        self.keys = keys.new_zeros((layers, 0, heads, 0, dim))
        self.values = values.new_zeros((layers, 0, heads, 0, values.shape[-1]))
        self.mask = torch.zeros((0, 0), dtype=torch.long, device=self.device)
        self.cache = DynamicCache()
        self.cache.layers = [_SlotLayer(self, i) for i in range(layers)]

    def _place(self, tag: Any, job: MixJob, prompts: _Prompts) -> None:
        """Write ``job``'s prompt caches into a free slot's two rows."""
        naive_len, expert_len = prompts.naive_keys.shape[-2], prompts.expert_keys.shape[-2]
        i, rows, end = self.slots.index(None), len(self.slots), self.length
        for row, n, k, v in ((i, naive_len, prompts.naive_keys, prompts.naive_values),
                             (rows + i, expert_len, prompts.expert_keys, prompts.expert_values)):
            self.mask[row] = 0
            self.mask[row, end - n : end] = 1
            self.keys[:, row, :, end - n : end] = k
            self.values[:, row, :, end - n : end] = v
        settings = self.settings
        draws = job_draws(job, settings)
        temperature = settings.temperature if job.temperature is None else job.temperature
        self.slots[i] = _Slot(
            tag, job, settings.token_budget(job), job.lambda_of(settings), temperature,
            draws[:, 0].tolist(), draws[:, 1],
            feed=(job.naive_ids[-1], job.expert_ids[-1]),
            position=(len(job.naive_ids) - 1, len(job.expert_ids) - 1),
            start=end - max(naive_len, expert_len),
            bigrams=reference_bigrams(job) if settings.mix_unit == "span" else set(),
        )

    # -- the buffer --------------------------------------------------------------------
    def _reshape(self, order: list[int | None]) -> None:
        """New slot list: old slot ``order[j]`` becomes slot ``j`` (``None``: an empty one)."""
        import torch

        old_rows, new_rows = len(self.slots), len(order)
        src = [o for o in order if o is not None]
        dst = [j for j, o in enumerate(order) if o is not None]
        src_t = torch.tensor(src + [old_rows + o for o in src], dtype=torch.long)
        dst_t = torch.tensor(dst + [new_rows + j for j in dst], dtype=torch.long)
        src_t, dst_t = src_t.to(self.device), dst_t.to(self.device)
        keys = self.keys.new_zeros((self.keys.shape[0], 2 * new_rows, *self.keys.shape[2:]))
        values = self.values.new_zeros((self.values.shape[0], 2 * new_rows,
                                        *self.values.shape[2:]))
        mask = self.mask.new_zeros((2 * new_rows, self.mask.shape[1]))
        if src:
            keys[:, dst_t] = self.keys[:, src_t]
            values[:, dst_t] = self.values[:, src_t]
            mask[dst_t] = self.mask[src_t]
        self.keys, self.values, self.mask = keys, values, mask
        self.slots = [self.slots[o] if o is not None else None for o in order]

    def _reserve(self, prefix: int) -> None:
        """Make room for a prompt of ``prefix`` columns before the next column and for the
        next column itself, moving the live window to the front of a new buffer if needed."""
        capacity = self.keys.shape[3]
        if prefix <= self.length < capacity:
            return
        live = [s.start for s in self.slots if s is not None]
        start = min(live) if live else self.length
        width = self.length - start
        length = max(width, prefix, self.longest_prefix)
        capacity = length + self.longest_prefix + self.settings.max_new_tokens + 1
        keys = self.keys.new_zeros((*self.keys.shape[:3], capacity, self.keys.shape[4]))
        values = self.values.new_zeros((*self.values.shape[:3], capacity,
                                        self.values.shape[4]))
        mask = self.mask.new_zeros((self.mask.shape[0], capacity))
        keys[:, :, :, length - width : length] = self.keys[:, :, :, start : self.length]
        values[:, :, :, length - width : length] = self.values[:, :, :, start : self.length]
        mask[:, length - width : length] = self.mask[:, start : self.length]
        shift = length - self.length
        for slot in self.slots:
            if slot is not None:
                slot.start += shift
        self.keys, self.values, self.mask = keys, values, mask
        self.start, self.length = length - width, length

    # -- the mixing rule ---------------------------------------------------------------
    def _choose(self, live: list[int], logits: Any) -> list[tuple[Any, MixOutput]]:
        """Pick each live slot's token (the reference's rule) and end the finished attempts."""
        rows = len(self.slots)
        slots = [self.slots[i] for i in live]
        steps = [len(s.tokens) for s in slots]
        coins = [s.coins[t] < s.mix_lambda for s, t in zip(slots, steps, strict=True)]
        if self.settings.mix_unit == "token":
            picked = [i if naive else rows + i for i, naive in zip(live, coins, strict=True)]
            tokens = self._select(logits, picked, slots, steps)
            choices = list(zip(coins, tokens, strict=True))
        else:
            both = self._select(logits, live + [rows + i for i in live], slots + slots,
                                steps + steps)
            choices = [self._unit(s, t, coin, both[j], both[len(live) + j])
                       for j, (s, t, coin) in enumerate(zip(slots, steps, coins, strict=True))]
        ended = []
        for i, slot, (naive, token) in zip(live, slots, choices, strict=True):
            slot.tokens.append(token)
            slot.naive.append(naive)
            if token in self.stops or len(slot.tokens) >= slot.budget:
                ended.append((slot.tag, finish(slot.tokens, slot.naive, self.stops,
                                               slot.budget)))
                self.slots[i] = None
            else:
                slot.feed = (token, token)
                slot.position = (slot.position[0] + 1, slot.position[1] + 1)
        return ended

    def _select(self, logits: Any, rows: list[int], slots: list[_Slot],
                steps: list[int]) -> list[int]:
        """:func:`select_tokens` on ``rows``, one call per temperature."""
        import torch

        out = [0] * len(rows)
        for temperature in sorted({s.temperature for s in slots}):
            group = [j for j, s in enumerate(slots) if s.temperature == temperature]
            index = torch.tensor([rows[j] for j in group], device=logits.device)
            uniforms = None if temperature == 0 else torch.stack(
                [slots[j].uniforms[steps[j]] for j in group])
            picked = select_tokens(logits[index], uniforms, temperature, self.settings.top_k)
            for j, token in zip(group, picked.tolist(), strict=True):
                out[j] = token
        return out

    def _unit(self, slot: _Slot, t: int, coin: bool, naive_token: int,
              expert_token: int) -> tuple[bool, int]:
        """The word and span units (:mod:`mixsd.targets.engine`'s docstring)."""
        starts = self.settings.starts_word
        if t == 0:
            naive = coin
        else:
            naive = coin if starts(naive_token) and starts(expert_token) else slot.naive[-1]
            if (slot.tokens[-1], expert_token) in slot.bigrams:
                naive = False
        return naive, naive_token if naive else expert_token


def stream_generate(model: Any, jobs: Sequence[MixJob], settings: MixSettings,
                    compact: bool = True) -> list[MixOutput]:
    """All ``jobs`` in one stream with a slot each (no refills); outputs in job order."""
    stream = MixStream(model, settings, slots=len(jobs), compact=compact)
    stream.admit([(i, job, None) for i, job in enumerate(jobs)])
    outputs: list[MixOutput | None] = [None] * len(jobs)
    while stream.busy():
        for i, output in stream.step():
            outputs[i] = output
    return outputs  # type: ignore[return-value]
