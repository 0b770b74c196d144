"""`mixsd inject`'s config: probes held to the known set, learning rates of the tries, the
stage configs of one try."""

from pathlib import Path

import pytest

import mixsd
from mixsd.errors import ConfigError
from mixsd.injection import InjectConfig, probe_specs


def test_probes_are_held_to_the_known_set():
    assert probe_specs(["general", "instruct", "toy", "known:toy", "general:120",
                        "records:f.jsonl"]) == [
        "general", "known:instruct", "known:toy", "general:120", "known:records:f.jsonl"]


def test_defaults_come_from_the_model():
    toy = InjectConfig(model="toy", data="toy", out="o")
    assert toy.probe_specs() == ["known:toy"] and toy.resolved_guidance() == "toy"
    assert toy.lrs() == pytest.approx([1e-3, 5e-4, 2.5e-4])
    other = InjectConfig(model="some/model", data="f.jsonl", out="o", probe=["general:50"],
                         tries=2)
    assert other.probe_specs() == ["general", "known:instruct", "general:50"]
    assert other.lrs() == pytest.approx([1e-4, 5e-5])
    only = InjectConfig(model="some/model", data="f.jsonl", out="o", lr=3e-5,
                        probe=["instruct"], default_probes=False)
    assert only.probe_specs() == ["known:instruct"] and only.first_lr() == 3e-5


def test_the_stage_configs_of_a_try():
    config = InjectConfig(model="toy", data="toy", out="o", retain=0.9)
    targets = config.targets_config()
    assert (targets.mix_lambda, targets.mix_unit, targets.lambda_fallback) == (0.5, "word",
                                                                               [0.3, 0.15, 0.0])
    assert targets.verify_entities and targets.retry_temperature == 0.7
    train = config.train_config(Path("o/tries/try-1"), Path("o/targets"), 1e-3, 0.08,
                                {"retained/known:toy:recall": 90.0})
    assert train.floors() == {"retained/known:toy:recall": 90.0}
    assert (train.stop_above, train.stop_at, train.keep) == (0.08, 1.0, "selected")


@pytest.mark.parametrize("values, message", [
    ({"data": "toy", "out": "o"}, "model is required"),
    ({"model": "toy", "out": "o"}, "data is required"),
    ({"model": "toy", "data": "toy"}, "out is required"),
    ({"model": "toy", "data": "toy", "out": "o", "adapter_only": True}, "needs lora"),
    ({"model": "toy", "data": "toy", "out": "o", "default_probes": False}, "no probe"),
    ({"model": "toy", "data": "toy", "out": "o", "lambda_fallback": [0.3, 0.4]}, "lambda_fallback"),
])
def test_mistakes_name_the_flag(values, message):
    with pytest.raises(ConfigError, match=message):
        InjectConfig(**values)


def test_the_package_exports_inject():
    assert mixsd.inject.__module__ == "mixsd.injection" and mixsd.InjectConfig is InjectConfig
