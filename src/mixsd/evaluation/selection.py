"""Checkpoint selection: the "first peak" of training accuracy across epochs (method.md).

The first peak is the first new running maximum that the next epoch does not exceed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from mixsd.errors import MixsdError


def first_peak(values: Sequence[float | None], floor: float | None = None) -> int:
    """Index (0-based) of the first new running maximum that the next value does not exceed.

    ``floor`` (the base model's memorisation): a peak must improve on it. Epochs at or below
    it are never the peak, so a curve that starts flat at the base level (0, 0, 0.25, 0.42)
    selects the epoch where learning shows, not epoch 1; when no epoch improves on the floor
    nothing was learned and the LAST epoch is returned (the most-trained state).

    Edge and tie behaviour:

    * index 0 is always a new running maximum (nothing came before it);
    * a value EQUAL to the running maximum is not a new maximum, and a next value equal to
      the peak "does not exceed" it, so on a plateau the first epoch of the plateau is chosen
      (``[0.2, 0.5, 0.5, 0.9]`` -> 1);
    * the last value, when it is a new running maximum, is the peak (no next epoch exceeds it);
    * ``None`` and NaN count as minus infinity (a failed evaluation never becomes the peak,
      unless every value failed, in which case 0 is returned);
    * an empty sequence raises :class:`MixsdError`.

    A peak always exists: the first occurrence of the global maximum qualifies.
    """
    if not values:
        raise MixsdError("first_peak needs at least one value")
    clean = [-math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
             for v in values]
    if floor is not None:
        if all(v <= floor for v in clean):
            return len(clean) - 1
        clean = [v if v > floor else -math.inf for v in clean]
    best = -math.inf
    for i, value in enumerate(clean):
        if (i > 0 or floor is not None) and value <= best:
            continue
        best = value
        if i + 1 == len(clean) or clean[i + 1] <= value:
            return i
    return 0  # unreachable: kept for type checkers


def best_epoch(values: Sequence[float | None]) -> int:
    """Index of the first epoch with the highest value (None/NaN count as minus infinity)."""
    if not values:
        raise MixsdError("best_epoch needs at least one value")
    clean = [-math.inf if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
             for v in values]
    return clean.index(max(clean))
