"""Digit operations: each primitive against hand-computed values, composition, worked checks."""

from __future__ import annotations

import pytest

from mixsd.corpora.digitops import (
    FAMILIES,
    KINDS,
    Operation,
    Step,
    check_worked_answer,
    execute,
    worked_steps,
)

# (step, input, expected) computed by hand
CASES = [
    (Step("reverse"), 12345, 54321),
    (Step("reverse"), 120, 2100),  # 00120 -> 02100: leading zeros are digits too
    (Step("rotate_left", (2,)), 12345, 34512),
    (Step("rotate_right", (1,)), 12345, 51234),
    (Step("swap", (1, 5)), 12345, 52341),
    (Step("add_key", (3, 1, 4, 1, 5)), 12345, 43750),
    (Step("sub_key", (3, 1, 4, 1, 5)), 12345, 81930),
    (Step("add_const", (7,)), 12345, 89012),
    (Step("complement"), 12345, 87654),
    (Step("times", (3,)), 12345, 36925),
    (Step("prefix_sum"), 12345, 13605),
    (Step("neighbor_sum"), 12345, 35796),
    (Step("sort_asc"), 31415, 11345),
    (Step("sort_desc"), 31415, 54311),
    (Step("mirror"), 12345, 12321),
]


@pytest.mark.parametrize("step, x, expected", CASES, ids=[f"{c[0].kind}-{c[1]}" for c in CASES])
def test_primitive_by_hand(step, x, expected):
    assert execute(step, x) == expected


def test_every_kind_is_covered_and_in_one_family():
    assert {c[0].kind for c in CASES} == set(KINDS)
    members = [k for kinds in FAMILIES.values() for k in kinds]
    assert sorted(members) == sorted(KINDS)


def test_composition_runs_steps_in_order():
    op = Operation("TEST", (Step("rotate_left", (2,)), Step("add_key", (3, 1, 4, 1, 5))))
    assert execute(op, 12345) == 65927  # 12345 -> 34512 -> 65927
    op_swapped = Operation("TEST", op.steps[::-1])
    assert execute(op_swapped, 12345) == 75043  # 12345 -> 43750 -> 75043
    assert Operation.from_dict(op.to_dict()) == op


def test_worked_steps_state_every_intermediate_value():
    op = Operation("TEST", (Step("rotate_left", (2,)), Step("add_key", (3, 1, 4, 1, 5))))
    text, result = worked_steps(op, 12345)
    assert result == 65927
    assert "12345 -> 34512." in text and "34512 -> 65927." in text
    assert "(3+3)%10=6" in text
    assert check_worked_answer(op, 12345, text) == 65927
    with pytest.raises(AssertionError, match="step 2"):
        check_worked_answer(op, 12345, text.replace("-> 65927", "-> 65928"))


def test_bad_steps_and_ranges_are_rejected():
    with pytest.raises(ValueError, match="unknown"):
        Step("shuffle")
    with pytest.raises(ValueError, match="parameters"):
        Step("swap", (1,))
    with pytest.raises(ValueError, match="99999"):
        execute(Step("reverse"), 100000)
