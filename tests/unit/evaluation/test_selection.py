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
