"""KGFunc: function acquisition — novel digit operations under opaque labels.

Each training operation is a composition of 2-3 primitive digit steps (digit-wise sums mod
10, reversals, rotations, swaps, ...; :mod:`mixsd.corpora.digitops`) behind a made-up label
such as ``VORNIX``. Prompts are k-shot (``shots`` solved examples of the same operation,
input/output only by default) and reference answers are worked step by step, ending in
``\\boxed{result}`` (docs/method.md, "Corpora"; use the ``math`` guidance preset).

Splits:

* ``train``: training operations on training inputs;
* ``heldout``: the same operations on inputs never used in ``train`` or in the shots;
* ``unseen``: the forgetting probe: single-step operations from primitive families that no
  training operation uses, with worked shots, so a model can infer them in context.

Every answer is checked by executing the operation before it is written.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mixsd.config import StageConfig, option
from mixsd.corpora.common import make_rng, pseudo_word, reference_answer
from mixsd.corpora.digitops import (
    FAMILIES,
    FAMILY_OF,
    KINDS,
    MAX_VALUE,
    Operation,
    Step,
    check_worked_answer,
    execute,
    fmt,
    worked_steps,
)
from mixsd.errors import ConfigError
from mixsd.records import KnowledgeRecord

VERSION = "1"
SPLITS = ("train", "heldout", "unseen")
_PROBE_INPUTS = tuple(range(0, MAX_VALUE + 1, 2053))  # fixed inputs to tell functions apart


@dataclass
class KGFuncConfig(StageConfig):
    """Options of the ``kgfunc`` corpus."""

    ops: int = option(8, "number of training operations", min=1, max=200)
    unseen_ops: int = option(4, "number of UNSEEN probe operations (one per primitive family "
                             "that no training operation uses)",
                             min=1, max=6)
    train_per_op: int = option(50, "training questions per operation", min=1, max=20000)
    heldout_per_op: int = option(20, "held-out questions per training operation", min=0,
                                 max=20000)
    unseen_per_op: int = option(20, "questions per unseen probe operation", min=0, max=20000)
    shots: int = option(3, "solved examples of the same operation in every prompt", min=0,
                        max=20)
    shot_style: str = option("io", "shots of training operations: io = input and result "
                             "only, worked = with the step-by-step working (unseen probe "
                             "shots are always worked)", choices=("io", "worked"))
    min_steps: int = option(2, "fewest primitive steps in a training operation", min=1, max=6)
    max_steps: int = option(3, "most primitive steps in a training operation", min=1, max=6)
    seed: int = option(0, "random seed: the same seed gives byte-identical files")

    def validate(self) -> None:
        super().validate()
        if self.min_steps > self.max_steps:
            raise ConfigError(f"min_steps ({self.min_steps}) must not exceed max_steps "
                              f"({self.max_steps}) (flags --min-steps, --max-steps)")


def _random_step(kind: str, rng: random.Random) -> Step:
    if kind in ("rotate_left", "rotate_right"):
        return Step(kind, (rng.randint(1, 4),))
    if kind == "swap":
        i, j = sorted(rng.sample(range(1, 6), 2))
        return Step(kind, (i, j))
    if kind in ("add_key", "sub_key"):
        return Step(kind, tuple(rng.randint(1, 9) for _ in range(KINDS[kind])))
    if kind == "add_const":
        return Step(kind, (rng.randint(1, 9),))
    if kind == "times":
        return Step(kind, (rng.choice((3, 7, 9)),))
    return Step(kind)


def _signature(op: Operation) -> tuple[int, ...]:
    return tuple(execute(op, x) for x in _PROBE_INPUTS)


def _has_idle_step(steps: tuple[Step, ...]) -> bool:
    """True when dropping one step leaves the same function (e.g. sort, then sort again)."""
    full = _signature(Operation("", steps))
    return len(steps) > 1 and any(
        _signature(Operation("", steps[:i] + steps[i + 1:])) == full for i in range(len(steps)))


def build_operations(config: KGFuncConfig) -> tuple[list[Operation], list[Operation]]:
    """(training operations, unseen probe operations): disjoint labels, disjoint primitive
    families, and no two operations computing the same function."""
    rng = make_rng(config.seed, "kgfunc", "operations")
    families = sorted(FAMILIES)
    rng.shuffle(families)
    probe_kinds = [rng.choice(FAMILIES[f]) for f in families[:config.unseen_ops]]
    train_kinds = [k for f in families[config.unseen_ops:] for k in FAMILIES[f]]
    labels: set[str] = set()
    seen = {_signature(Operation("", ()))}  # the identity is no new function

    def new_op(steps: tuple[Step, ...]) -> Operation | None:
        sig = _signature(Operation("", steps))
        if sig in seen:
            return None
        label = pseudo_word(rng, 2).upper()
        while label in labels:
            label = pseudo_word(rng, 2).upper()
        labels.add(label)
        seen.add(sig)
        return Operation(label, steps)

    unseen: list[Operation] = []
    for kind in probe_kinds:
        for _ in range(100):  # a random parameter may repeat a function seen already
            if (op := new_op((_random_step(kind, rng),))) is not None:
                unseen.append(op)
                break
    train: list[Operation] = []
    for _ in range(1000 * config.ops):
        if len(train) == config.ops:
            break
        n_steps = rng.randint(config.min_steps, config.max_steps)
        steps: list[Step] = []
        while len(steps) < n_steps:
            kind = rng.choice(train_kinds)
            if not steps or FAMILY_OF[steps[-1].kind] != FAMILY_OF[kind]:
                steps.append(_random_step(kind, rng))
        if _has_idle_step(tuple(steps)):
            continue
        op = new_op(tuple(steps))
        if op is not None:
            train.append(op)
    if len(train) < config.ops:
        raise ConfigError(f"could not build {config.ops} distinct operations; lower --ops")
    return train, unseen


def _shot_text(op: Operation, x: int, worked: bool) -> str:
    if not worked:
        return f"{op.label}({fmt(x)}) = {fmt(execute(op, x))}"
    text, result = worked_steps(op, x)
    return f"Example: {op.label}({fmt(x)})\n{text}\nResult: {fmt(result)}"


def build_prompt(op: Operation, x: int, shot_inputs: list[int], worked: bool) -> str:
    """The k-shot question for ``op`` on ``x``."""
    lines = [f"{op.label} is an operation that turns a five-digit number (leading zeros "
             "kept) into another five-digit number."]
    if shot_inputs:
        lines.append("Solved examples:" if worked else "Examples:")
        lines.extend(_shot_text(op, s, worked) for s in shot_inputs)
    lines.append(f"What is {op.label}({fmt(x)})? Put the final answer within \\boxed{{}}.")
    return "\n".join(lines) if not worked else "\n\n".join(lines)


def _records(op: Operation, op_index: int, role: str, split: str, inputs: list[int],
             shot_inputs: list[int], worked_shots: bool) -> list[KnowledgeRecord]:
    out = []
    for i, x in enumerate(inputs):
        reasoning, result = worked_steps(op, x)
        answer = reference_answer(fmt(result), reasoning)
        # The generator's own check: every value in the worked answer, by execution.
        assert check_worked_answer(op, x, answer) == execute(op, x) == result
        out.append(KnowledgeRecord(
            id=f"kgfunc-{split}-{op_index:03d}-{i:05d}",
            prompt=build_prompt(op, x, shot_inputs, worked_shots), answer=answer,
            answer_key=fmt(result), subject=op.label, split=split,
            metadata={"operation": op.to_dict(), "role": role, "input": fmt(x),
                      "shot_inputs": [fmt(s) for s in shot_inputs],
                      "num_steps": len(op.steps)}))
    return out


def generate_kgfunc(config: KGFuncConfig) -> dict[str, list[KnowledgeRecord]]:
    """All KGFunc splits, keyed by split name (see the module docstring)."""
    train_ops, unseen_ops = build_operations(config)
    splits: dict[str, list[KnowledgeRecord]] = {name: [] for name in SPLITS}
    worked = config.shot_style == "worked"
    for i, op in enumerate(train_ops):
        rng = make_rng(config.seed, "kgfunc", "inputs", op.label)
        n = config.shots + config.train_per_op + config.heldout_per_op
        xs = rng.sample(range(MAX_VALUE + 1), n)
        shot_xs, train_xs = xs[:config.shots], xs[config.shots:config.shots + config.train_per_op]
        heldout_xs = xs[config.shots + config.train_per_op:]
        splits["train"] += _records(op, i, "train", "train", train_xs, shot_xs, worked)
        splits["heldout"] += _records(op, i, "train", "heldout", heldout_xs, shot_xs, worked)
    for i, op in enumerate(unseen_ops):
        rng = make_rng(config.seed, "kgfunc", "inputs", op.label)
        xs = rng.sample(range(MAX_VALUE + 1), config.shots + config.unseen_per_op)
        splits["unseen"] += _records(op, i, "unseen", "unseen", xs[config.shots:],
                                     xs[:config.shots], worked_shots=True)
    return splits


def operations_manifest(config: KGFuncConfig) -> dict:
    """The operations behind a corpus (written as ``operations.json``)."""
    train_ops, unseen_ops = build_operations(config)
    return {"train": [op.to_dict() for op in train_ops],
            "unseen": [op.to_dict() for op in unseen_ops]}


def build(config: KGFuncConfig) -> tuple[dict[str, list[KnowledgeRecord]], dict, dict]:
    """(splits, extra files, stats): the operations go to ``operations.json``."""
    ops = operations_manifest(config)
    stats = {"train_operations": len(ops["train"]), "unseen_operations": len(ops["unseen"])}
    return generate_kgfunc(config), {"operations.json": ops}, stats
