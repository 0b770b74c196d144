"""KGFunc: every answer verified by execution, disjoint inputs/splits, the unseen probe."""

from __future__ import annotations

import re

import pytest

from mixsd.answers import extract_boxed, is_correct
from mixsd.corpora import KGFuncConfig, generate_corpus
from mixsd.corpora.digitops import FAMILY_OF, Operation, check_worked_answer, execute
from mixsd.corpora.kgfunc import build_operations
from mixsd.errors import ConfigError

CONFIG = KGFuncConfig(ops=6, unseen_ops=4, train_per_op=30, heldout_per_op=10,
                      unseen_per_op=10, shots=3, seed=2)


@pytest.fixture(scope="module")
def splits():
    return generate_corpus("kgfunc", CONFIG)


def test_split_sizes(splits):
    assert len(splits["train"]) == 6 * 30
    assert len(splits["heldout"]) == 6 * 10
    assert len(splits["unseen"]) == 4 * 10


def test_every_answer_is_verified_by_execution(splits):
    for rec in (r for records in splits.values() for r in records):
        op = Operation.from_dict(rec.metadata["operation"])
        x = int(rec.metadata["input"])
        result = execute(op, x)
        assert rec.answer_key == f"{result:05d}"
        assert extract_boxed(rec.answer) == rec.answer_key
        assert rec.answer.endswith(f"The answer is {rec.answer_key}.\n\n\\boxed{{{rec.answer_key}}}")
        assert check_worked_answer(op, x, rec.answer) == result
        assert is_correct(rec.answer, rec.answer_key)
        assert rec.subject == op.label and f"{op.label}({x:05d})?" in rec.prompt


def test_shots_are_solved_examples_of_the_same_operation(splits):
    for rec in splits["train"][:20] + splits["heldout"][:10]:
        op = Operation.from_dict(rec.metadata["operation"])
        shown = re.findall(rf"^{op.label}\((\d{{5}})\) = (\d{{5}})$", rec.prompt, re.MULTILINE)
        assert len(shown) == CONFIG.shots
        assert [s for s, _ in shown] == rec.metadata["shot_inputs"]
        assert all(execute(op, int(s)) == int(y) for s, y in shown)
        assert "Step 1" not in rec.prompt  # io shots by default
    for rec in splits["unseen"]:
        assert rec.prompt.count("Example: ") == CONFIG.shots and "Step 1:" in rec.prompt


def test_worked_shot_style_shows_steps():
    rec = generate_corpus("kgfunc", KGFuncConfig(ops=1, train_per_op=1, heldout_per_op=0,
                                                 unseen_per_op=1, unseen_ops=1,
                                                 shot_style="worked"))["train"][0]
    assert rec.prompt.count("Example: ") == 3 and "Step 1:" in rec.prompt


def test_inputs_are_disjoint_between_shots_train_and_heldout(splits):
    by_op: dict[str, dict[str, set]] = {}
    for split in ("train", "heldout"):
        for rec in splits[split]:
            entry = by_op.setdefault(rec.subject, {"train": set(), "heldout": set()})
            entry[split].add(rec.metadata["input"])
            entry["shots"] = set(rec.metadata["shot_inputs"])
    for sets in by_op.values():
        assert not sets["train"] & sets["heldout"]
        assert not (sets["train"] | sets["heldout"]) & sets["shots"]


def test_no_train_question_in_heldout_or_unseen(splits):
    train_prompts = {r.prompt for r in splits["train"]}
    question = re.compile(r"What is \w+\(\d{5}\)\?")
    train_questions = {question.search(p).group(0) for p in train_prompts}
    for split in ("heldout", "unseen"):
        for rec in splits[split]:
            assert rec.prompt not in train_prompts
            assert question.search(rec.prompt).group(0) not in train_questions


def test_unseen_operations_are_disjoint_from_training_operations():
    for seed in range(5):
        train, unseen = build_operations(KGFuncConfig(ops=12, unseen_ops=5, seed=seed))
        assert len(train) == 12 and len(unseen) == 5
        assert not {op.label for op in train} & {op.label for op in unseen}
        train_families = {FAMILY_OF[s.kind] for op in train for s in op.steps}
        unseen_families = {FAMILY_OF[s.kind] for op in unseen for s in op.steps}
        assert not train_families & unseen_families
        assert all(len(op.steps) == 1 for op in unseen)
        assert all(2 <= len(op.steps) <= 3 for op in train)
        probe = range(0, 100000, 997)
        signatures = {tuple(execute(op, x) for x in probe) for op in train + unseen}
        assert len(signatures) == len(train) + len(unseen)  # all different functions


def test_unseen_split_uses_only_unseen_operations(splits):
    train_labels = {r.subject for r in splits["train"]}
    assert not train_labels & {r.subject for r in splits["unseen"]}
    assert {r.metadata["role"] for r in splits["unseen"]} == {"unseen"}


def test_deterministic_for_a_seed():
    a = generate_corpus("kgfunc", CONFIG)
    b = generate_corpus("kgfunc", CONFIG)
    assert {k: [r.to_dict() for r in v] for k, v in a.items()} == \
        {k: [r.to_dict() for r in v] for k, v in b.items()}
    other = generate_corpus("kgfunc", KGFuncConfig(**{**CONFIG.to_dict(), "seed": 3}))
    assert [r.prompt for r in other["train"]] != [r.prompt for r in a["train"]]


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="min_steps"):
        KGFuncConfig(min_steps=3, max_steps=2)
    with pytest.raises(ConfigError, match="unseen_ops must be in"):
        KGFuncConfig(unseen_ops=9)
    with pytest.raises(ConfigError, match="shot_style"):
        KGFuncConfig(shot_style="cot")
