"""Deterministic digit-level operations over [0, 99999] and their worked explanations.

A number is handled as its five digits (leading zeros kept, ``00042``). An
:class:`Operation` is an opaque label plus a sequence of primitive :class:`Step` s;
:func:`execute` runs it, :func:`worked_steps` explains each step in words with the
intermediate values (the chain of thought of a KGFunc reference answer), and
:func:`check_worked_answer` re-reads such an explanation and checks every value in it by
execution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

N_DIGITS = 5
MAX_VALUE = 10**N_DIGITS - 1

#: Primitive kinds and how many integer parameters each takes.
KINDS = {
    "reverse": 0, "rotate_left": 1, "rotate_right": 1, "swap": 2, "add_key": N_DIGITS,
    "sub_key": N_DIGITS, "add_const": 1, "complement": 0, "times": 1, "prefix_sum": 0,
    "neighbor_sum": 0, "sort_asc": 0, "sort_desc": 0, "mirror": 0,
}

#: Kinds that compute related functions (rotate right 3 = rotate left 2, add 7 to every digit =
#: add key 77777) share a family; the UNSEEN probe and the training operations never share one.
FAMILIES = {
    "reverse": ("reverse",), "rotate": ("rotate_left", "rotate_right"), "swap": ("swap",),
    "shift": ("add_key", "sub_key", "add_const"), "complement": ("complement",),
    "times": ("times",), "prefix_sum": ("prefix_sum",), "neighbor_sum": ("neighbor_sum",),
    "sort": ("sort_asc", "sort_desc"), "mirror": ("mirror",),
}
FAMILY_OF = {kind: family for family, kinds in FAMILIES.items() for kind in kinds}


@dataclass(frozen=True)
class Step:
    """One primitive digit operation with its integer parameters."""

    kind: str
    params: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown digit operation {self.kind!r}")
        if len(self.params) != KINDS[self.kind]:
            raise ValueError(f"{self.kind} takes {KINDS[self.kind]} parameters, "
                             f"got {len(self.params)}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "params": list(self.params)}


@dataclass(frozen=True)
class Operation:
    """A novel operation: an opaque ``label`` for a fixed sequence of steps."""

    label: str
    steps: tuple[Step, ...]

    def to_dict(self) -> dict:
        return {"label": self.label, "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, data: dict) -> Operation:
        return cls(data["label"], tuple(Step(s["kind"], tuple(s["params"]))
                                        for s in data["steps"]))


def digits_of(x: int) -> list[int]:
    if not 0 <= x <= MAX_VALUE:
        raise ValueError(f"digit operations take numbers in [0, {MAX_VALUE}], got {x}")
    return [int(c) for c in f"{x:0{N_DIGITS}d}"]


def number_of(digits: list[int]) -> int:
    return int("".join(map(str, digits)))


def fmt(x: int) -> str:
    """A number as the five digits the operations see (``42`` -> ``00042``)."""
    return f"{x:0{N_DIGITS}d}"


def apply_step(step: Step, d: list[int]) -> list[int]:
    """One primitive on a digit list (returns a new list)."""
    k, p, n = step.kind, step.params, len(d)
    if k == "reverse":
        return d[::-1]
    if k == "rotate_left":
        return d[p[0] % n:] + d[:p[0] % n]
    if k == "rotate_right":
        return d[n - p[0] % n:] + d[:n - p[0] % n]
    if k == "swap":
        out = list(d)
        i, j = p[0] - 1, p[1] - 1
        out[i], out[j] = out[j], out[i]
        return out
    if k == "add_key":
        return [(a + b) % 10 for a, b in zip(d, p)]
    if k == "sub_key":
        return [(a - b) % 10 for a, b in zip(d, p)]
    if k == "add_const":
        return [(a + p[0]) % 10 for a in d]
    if k == "complement":
        return [9 - a for a in d]
    if k == "times":
        return [(a * p[0]) % 10 for a in d]
    if k == "prefix_sum":
        out, total = [], 0
        for a in d:
            total = (total + a) % 10
            out.append(total)
        return out
    if k == "neighbor_sum":
        return [(d[i] + d[(i + 1) % n]) % 10 for i in range(n)]
    if k == "sort_asc":
        return sorted(d)
    if k == "sort_desc":
        return sorted(d, reverse=True)
    if k == "mirror":
        half = n // 2
        return d[: n - half] + d[:half][::-1]
    raise ValueError(f"unknown digit operation {k!r}")


def execute(op: Operation | Step, x: int) -> int:
    """The result of ``op`` on ``x`` (an int in [0, 99999])."""
    digits = digits_of(x)
    for step in (op.steps if isinstance(op, Operation) else (op,)):
        digits = apply_step(step, digits)
    return number_of(digits)


def eval_term(a: int, sym: str, t: str) -> int:
    b = int(t)
    return (a + b) % 10 if sym == "+" else (a - b) % 10 if sym == "-" else (a * b) % 10


def describe(step: Step) -> str:
    """The step in words, as the worked answer states it."""
    k, p = step.kind, step.params
    words = {
        "reverse": "reverse the order of the digits",
        "complement": "replace every digit d by 9-d",
        "prefix_sum": "replace every digit by the running sum of the digits up to it, mod 10",
        "neighbor_sum": "add every digit to the digit after it (the last wraps around to "
                        "the first), mod 10",
        "sort_asc": "sort the digits in ascending order",
        "sort_desc": "sort the digits in descending order",
        "mirror": "copy the first two digits, reversed, over the last two",
    }
    if k in words:
        return words[k]
    if k in ("rotate_left", "rotate_right"):
        return f"rotate the digits {k.split('_')[1]} by {p[0]}"
    if k == "swap":
        return f"swap digit {p[0]} and digit {p[1]}"
    if k in ("add_key", "sub_key"):
        verb = "add" if k == "add_key" else "subtract"
        return f"{verb} {''.join(map(str, p))} digit by digit, mod 10"
    if k == "add_const":
        return f"add {p[0]} to every digit, mod 10"
    return f"multiply every digit by {p[0]}, mod 10"


def _detail(step: Step, d: list[int]) -> str:
    """Per-digit working for the arithmetic steps ('' for the rearrangements)."""
    k, p = step.kind, step.params
    if k in ("add_key", "sub_key", "add_const", "times"):
        sym = {"add_key": "+", "sub_key": "-", "add_const": "+", "times": "*"}[k]
        terms = [str(t) for t in (p if k in ("add_key", "sub_key") else p * len(d))]
        return " " + ", ".join(f"({a}{sym}{t})%10={eval_term(a, sym, t)}"
                               for a, t in zip(d, terms)) + ";"
    if k == "complement":
        return " " + ", ".join(f"9-{a}={9 - a}" for a in d) + ";"
    if k == "prefix_sum":
        total, parts = 0, []
        for a in d:
            parts.append(f"({total}+{a})%10={(total + a) % 10}")
            total = (total + a) % 10
        return " " + ", ".join(parts) + ";"
    if k == "neighbor_sum":
        n = len(d)
        return " " + ", ".join(f"({d[i]}+{d[(i + 1) % n]})%10={(d[i] + d[(i + 1) % n]) % 10}"
                               for i in range(n)) + ";"
    return ""


def worked_steps(op: Operation, x: int) -> tuple[str, int]:
    """The step-by-step working of ``op`` on ``x`` and the result."""
    lines = [f"Apply {op.label} to {fmt(x)} step by step."]
    digits = digits_of(x)
    for i, step in enumerate(op.steps, start=1):
        nxt = apply_step(step, digits)
        lines.append(f"Step {i}: {describe(step)}:{_detail(step, digits)} "
                     f"{fmt(number_of(digits))} -> {fmt(number_of(nxt))}.")
        digits = nxt
    return "\n".join(lines), number_of(digits)


_ARROW = re.compile(r"(\d{5}) -> (\d{5})\.$", re.MULTILINE)


def check_worked_answer(op: Operation, x: int, text: str) -> int:
    """Re-read a worked answer and check each step's values by execution; return the result.

    Raises ``AssertionError`` naming the step at fault.
    """
    arrows = _ARROW.findall(text)
    assert len(arrows) == len(op.steps), f"{len(arrows)} worked steps for {len(op.steps)}"
    value = x
    for i, (step, (before, after)) in enumerate(zip(op.steps, arrows), start=1):
        assert int(before) == value, f"step {i} starts from {before}, expected {fmt(value)}"
        value = execute(step, value)
        assert int(after) == value, f"step {i} gives {after}, expected {fmt(value)}"
    assert value == execute(op, x)
    return value
