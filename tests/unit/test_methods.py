import dataclasses

from mixsd.methods import (
    DEFAULT_METHODS,
    METHOD_KINDS,
    STAGE_METHODS,
    TARGET_METHODS,
    TRAIN_METHODS,
    parse_method,
)
from mixsd.targets.config import TargetsConfig
from mixsd.training.config import TrainConfig


def _choices(cls, name):
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    return tuple(field.metadata["choices"])


def test_each_compare_method_maps_to_the_stage_vocabularies():
    assert set(STAGE_METHODS) == set(METHOD_KINDS)
    assert _choices(TargetsConfig, "method") == TARGET_METHODS
    assert _choices(TrainConfig, "method") == TRAIN_METHODS
    for kind, (targets, train) in STAGE_METHODS.items():
        assert targets is None or targets in TARGET_METHODS, kind
        assert train is None or train in TRAIN_METHODS, kind
    assert [(parse_method(m).targets_method, parse_method(m).train_method)
            for m in ("sft", "sd0", "mixsd:0.5/word", "opsd", "memit")] == [
        ("sft", "nll"), ("mixsd", "nll"), ("mixsd", "nll"), (None, "opsd"), (None, None)]
    assert {parse_method(m).kind for m in DEFAULT_METHODS} <= set(METHOD_KINDS)
