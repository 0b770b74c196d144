import math

import pytest

from mixsd.errors import MixsdError
from mixsd.evaluation.selection import first_peak


@pytest.mark.parametrize("curve, expected", [
    ([0.1, 0.5, 0.4, 0.9], 1),        # first running max not exceeded next epoch
    ([0.1, 0.3, 0.6, 0.9], 3),        # monotone: the last epoch
    ([0.9, 0.2, 0.95], 0),            # first epoch is already a peak
    ([0.2, 0.5, 0.5, 0.9], 1),        # plateau: next equal does not exceed -> first of plateau
    ([0.5, 0.5, 0.7, 0.6], 0),        # tie right after epoch 0
    ([0.1, 0.6, 0.7, 0.3, 0.8], 2),
    ([0.7], 0),
    ([0.3, 0.2, 0.1], 0),
    ([0.1, 0.1, 0.1], 0),
])
def test_first_peak_crafted_curves(curve, expected):
    assert first_peak(curve) == expected


def test_first_peak_failed_values_never_win():
    assert first_peak([None, 0.4, 0.3]) == 1
    assert first_peak([math.nan, 0.2, 0.5]) == 2
    assert first_peak([None, None]) == 0


def test_first_peak_empty_is_an_error():
    with pytest.raises(MixsdError):
        first_peak([])


@pytest.mark.parametrize("values,floor,expected", [
    ([0.0, 0.0, 0.25, 0.42, 0.58, 0.67], 0.0, 5),  # flat start at the base level: not epoch 1
    ([0.0, 0.0, 0.25, 0.2, 0.5], 0.0, 2),           # the first peak above the base
    ([0.1, 0.1, 0.1], 0.1, 2),                      # nothing learned: the last epoch
    ([0.3, 0.2, 0.5], 0.1, 0),                      # epoch 1 already improves on the base
    ([0.0, 0.0, 0.25, 0.42], None, 0),              # without a floor: the paper's rule
])
def test_first_peak_must_improve_on_the_base(values, floor, expected):
    assert first_peak(values, floor=floor) == expected


def test_best_epoch_is_the_first_maximum():
    from mixsd.evaluation.selection import best_epoch

    assert best_epoch([0.1, 0.5, 0.4, 0.5]) == 1
    assert best_epoch([None, 0.2]) == 1


# -- under a forgetting budget ---------------------------------------------------------
def _rows(*points):
    """(memorisation, retained/a, retained/b) per epoch."""
    return [{"epoch": i + 1, "memorization": m, "retained/a": a, "retained/b": b}
            for i, (m, a, b) in enumerate(points)]


FLOORS = {"retained/a": 90.0, "retained/b": 90.0}


def test_metric_floors_parse_and_refuse():
    from mixsd.errors import ConfigError
    from mixsd.evaluation.selection import metric_floors

    assert metric_floors(["retained/toy:recall=90", "retained/x=95.5"]) == {
        "retained/toy:recall": 90.0, "retained/x": 95.5}
    for bad in ("retained/a", "retained/a=high", "=90"):
        with pytest.raises(ConfigError, match="METRIC=MIN"):
            metric_floors([bad])


def test_shortfall_is_the_worst_relative_deficit():
    from mixsd.evaluation.selection import shortfall

    assert shortfall({"retained/a": 95, "retained/b": 90}, FLOORS) == 0.0
    assert shortfall({"retained/a": 81, "retained/b": 45}, FLOORS) == pytest.approx(0.5)
    assert shortfall({"retained/a": 95}, FLOORS) == math.inf  # b not measured


def test_budget_pick_takes_the_most_memorised_epoch_within_the_budget():
    from mixsd.evaluation.selection import budget_pick

    # epoch 3 memorises most but breaks the budget; epochs 2 and 4 tie within it: the first
    rows = _rows((0.1, 100, 100), (0.5, 95, 92), (0.8, 85, 95), (0.5, 91, 90))
    assert budget_pick(rows, FLOORS, floor=0.1) == (1, True)
    # nothing within the budget learned more than the base (0.1): the closest to the budget
    rows = _rows((0.1, 100, 100), (0.5, 80, 95), (0.8, 60, 95))
    assert budget_pick(rows, FLOORS, floor=0.1) == (0, False)
    # nothing within the budget: the least shortfall, then the most memorised
    rows = _rows((0.5, 60, 99), (0.2, 85, 99), (0.3, 99, 85), (0.1, 85, 99))
    assert budget_pick(rows, FLOORS, floor=0.1) == (2, False)
    rows = _rows((0.5, 60, 99), (0.2, 85, 99), (0.1, 85, 99))
    assert budget_pick(rows, FLOORS, floor=0.1) == (1, False)
    # equally memorised within the budget (nothing learned): the least damaged
    rows = _rows((0.1, 95, 91), (0.1, 99, 99), (0.1, 99, 99))
    assert budget_pick(rows, FLOORS, floor=0.1) == (1, False)
    with pytest.raises(MixsdError):
        budget_pick([], FLOORS)
