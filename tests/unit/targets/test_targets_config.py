"""TargetsConfig: validation messages name key and flag; flags from add_arguments."""

from __future__ import annotations

import argparse

import pytest

from mixsd.errors import ConfigError
from mixsd.targets import TargetsConfig


def test_defaults():
    cfg = TargetsConfig()
    assert (cfg.method, cfg.mix_lambda, cfg.temperature, cfg.top_k) == ("mixsd", 0.3, 0.0, 64)
    assert (cfg.max_new_tokens, cfg.max_retries, cfg.batch_size, cfg.guidance) == (
        256,
        10,
        32,
        "knowledge",
    )
    assert cfg.max_attempts == 11


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"mix_lambda": 1.3}, ["mix_lambda", "[0, 1]", "--lambda"]),
        ({"mix_lambda": -0.1}, ["mix_lambda", "--lambda"]),
        ({"temperature": -1}, ["temperature", "--temperature"]),
        ({"top_k": 0}, ["top_k", "--top-k"]),
        ({"method": "rl"}, ["method", "mixsd, sft"]),
        ({"extractor": "magic"}, ["extractor", "--extractor"]),
        ({"extractor": "regex:("}, ["regex", "--extractor"]),
        ({"max_retries": -1}, ["max_retries"]),
        ({"batch_size": 0}, ["batch_size"]),
    ],
)
def test_bad_values_name_key_and_flag(kwargs, words):
    with pytest.raises(ConfigError) as err:
        TargetsConfig(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_flags_and_yaml(tmp_path):
    parser = argparse.ArgumentParser()
    TargetsConfig.add_arguments(parser)
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("mix_lambda: 0.5\ntop_k: 8\n")
    args = parser.parse_args(
        [
            "--config",
            str(yaml_file),
            "--lambda",
            "0.7",
            "--temperature",
            "0.5",
            "--stop-tokens",
            "a,b",
            "--method",
            "sft",
        ]
    )
    cfg = TargetsConfig.from_args(args)
    assert (cfg.mix_lambda, cfg.top_k, cfg.temperature, cfg.method) == (0.7, 8, 0.5, "sft")
    assert cfg.stop_tokens == ["a", "b"]


def test_fingerprint_ignores_batch_size_and_device():
    a = TargetsConfig(batch_size=1, device="cpu").fingerprint_dict()
    assert a == TargetsConfig(batch_size=64, overwrite=True).fingerprint_dict()
    assert a != TargetsConfig(seed=1).fingerprint_dict()
