"""Per-record random draws and the token-selection rule shared by the engine and reference.

Every random number a target uses comes from a ``torch.Generator`` seeded by a stable hash
(sha256) of ``(seed, record id, attempt)``: a target never depends on batch size, order, the
other records, the process count or a resume point (docs/architecture.md, "Seeds"). Each step ``t`` uses
two uniforms: ``draws[t, 0]`` is the coin (naive token when ``< lambda``) and ``draws[t, 1]``
picks the token by inverse CDF over the sorted top-k probabilities when ``T > 0``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def record_seed(seed: int, record_id: str, attempt: int) -> int:
    """A 63-bit seed from a stable hash of ``(seed, record id, attempt)``."""
    payload = json.dumps([int(seed), str(record_id), int(attempt)]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "little") & ((1 << 63) - 1)


def record_draws(seed: int, record_id: str, attempt: int, steps: int) -> Any:
    """``[steps, 2]`` float32 uniforms in [0, 1): column 0 the coin, column 1 the sampler."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(record_seed(seed, record_id, attempt))
    return torch.rand((steps, 2), generator=gen, dtype=torch.float32)


def select_tokens(logits: Any, uniforms: Any, temperature: float, top_k: int) -> Any:
    """Pick one token per row of ``logits`` ``[R, V]`` (docs/method.md, "The method").

    ``T = 0``: argmax. ``T > 0``: sample softmax(top-k logits / T) by inverse CDF with the
    row's uniform ``uniforms[r]``: the first sorted token whose cumulative probability
    exceeds ``u`` (times the total, to absorb float rounding).
    """
    import torch

    if temperature == 0:
        return logits.argmax(dim=-1)
    k = min(int(top_k), logits.shape[-1])
    values, indices = logits.float().topk(k, dim=-1)
    cdf = torch.softmax(values / float(temperature), dim=-1).cumsum(dim=-1)
    target = uniforms.to(cdf.device, cdf.dtype).unsqueeze(-1) * cdf[:, -1:]
    pick = torch.searchsorted(cdf, target, right=True).clamp_(max=k - 1)
    return indices.gather(-1, pick).squeeze(-1)
