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
