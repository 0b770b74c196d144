"""Checkpoint selection: the "first peak" of training accuracy across epochs (docs/method.md).

The first peak is the first new running maximum that the next epoch does not exceed. Under
a forgetting budget (``mixsd inject``, docs/method.md "Beyond the paper") the rule is another:
the highest memorisation among the epochs whose probes all keep their minimum
(:func:`budget_pick`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mixsd.errors import ConfigError, MixsdError


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


# -- selection under a forgetting budget (``mixsd inject``) ---------------------------------
def metric_floors(items: Sequence[str], *, flag: str = "--stop-floor") -> dict[str, float]:
    """``["retained/general=95", ...]`` -> ``{"retained/general": 95.0, ...}``: the minimum
    each named epoch metric must keep (the budget). The metric name is everything before the
    last ``=`` (suite names may hold ``:``)."""
    floors: dict[str, float] = {}
    for item in items:
        name, sep, value = str(item).rpartition("=")
        try:
            floors[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ConfigError(f"expected METRIC=MIN (e.g. retained/general=95), got {item!r} "
                              f"(flag {flag})")
    return floors


def below(value: float, low: float) -> bool:
    """Whether ``value`` falls below the minimum ``low`` (beyond float rounding: a retention
    of 100 * 0.29 / 1.0 keeps a minimum of 29)."""
    return value < low - 1e-9 * max(1.0, abs(low))


def shortfall(row: Mapping[str, Any], floors: Mapping[str, float]) -> float:
    """How far one epoch's metrics fall below the budget ``floors``: the largest relative
    deficit ``(MIN - value) / MIN`` over the floors, 0.0 when every metric keeps its minimum
    (within the budget), infinity when a metric is missing (not measured: not known to be
    within it)."""
    worst = 0.0
    for name, low in floors.items():
        value = row.get(name)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return math.inf
        if below(value, low):
            worst = max(worst, (low - value) / low if low > 0 else math.inf)
    return worst


def headroom(row: Mapping[str, Any], floors: Mapping[str, float]) -> float:
    """How far one epoch's worst metric stays above its minimum, relative to it
    (``(value - MIN) / MIN``, the smallest over the floors; minus infinity when a metric is
    missing): among equally memorised epochs, the least damaged one."""
    worst = math.inf
    for name, low in floors.items():
        value = row.get(name)
        if not isinstance(value, (int, float)) or math.isnan(value):
            return -math.inf
        worst = min(worst, (value - low) / low if low > 0 else float(value))
    return worst


def budget_pick(rows: Sequence[Mapping[str, Any]], floors: Mapping[str, float], *,
                metric: str = "memorization", floor: float | None = None) -> tuple[int, bool]:
    """The epoch to ship under a forgetting budget: ``(index, met)``.

    The epochs are ranked by :func:`shortfall` (least first: the budget comes first), then by
    ``metric`` (highest first), then by :func:`headroom` (the least damaged), then by
    position (earliest first). ``met`` is
    True when the first-ranked epoch is within the budget and learned something (``metric``
    above ``floor``, the base model's memorisation): it is then the most memorised epoch
    within the budget. Otherwise it is the best model found: the one closest to the budget
    (the most memorised of those equally close), which may have learned nothing. One total
    order, so the best of several runs is the best of each run's best."""
    if not rows:
        raise MixsdError("budget_pick needs at least one epoch")
    low = -math.inf if floor is None else floor

    def rank(i: int) -> tuple:
        value = rows[i].get(metric)
        value = -math.inf if not isinstance(value, (int, float)) or math.isnan(value) \
            else float(value)
        return (-shortfall(rows[i], floors), value, headroom(rows[i], floors), -i)

    best = max(range(len(rows)), key=rank)
    deficit, value, _, _ = rank(best)
    return best, bool(deficit == 0 and value > low)
