import argparse
from dataclasses import dataclass

import pytest

from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError


@dataclass
class DemoConfig(StageConfig):
    mix_lambda: float = option(0.5, "probability of the naive token", flag="--lambda", min=0, max=1)
    method: str = option("mixsd", "which targets", choices=["mixsd", "sft"])
    seeds: list[int] = option(help="seeds", default_factory=lambda: [0])
    lora: bool = option(False, "use LoRA")
    name: str | None = option(None, "optional name")


def parse(argv):
    parser = argparse.ArgumentParser()
    DemoConfig.add_arguments(parser)
    return DemoConfig.from_args(parser.parse_args(argv))


def test_defaults_and_flags():
    assert parse([]) == DemoConfig()
    cfg = parse(["--lambda", "0.3", "--seeds", "1,2", "--lora", "--method", "sft"])
    assert (cfg.mix_lambda, cfg.seeds, cfg.lora, cfg.method) == (0.3, [1, 2], True, "sft")


def test_range_error_names_key_and_flag():
    with pytest.raises(ConfigError, match=r"mix_lambda must be in \[0, 1\], got 1.3 \(flag --lambda\)"):
        parse(["--lambda", "1.3"])
    with pytest.raises(ConfigError, match="method must be one of mixsd, sft"):
        DemoConfig(method="x")
    with pytest.raises(ConfigError, match="mix_lambda must be of type float"):
        parse(["--lambda", "abc"])


def test_yaml_then_flags_precedence(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mix_lambda: 0.7\nmethod: sft\n")
    cfg = parse(["--config", str(path), "--lambda", "0.2"])
    assert (cfg.mix_lambda, cfg.method) == (0.2, "sft")
    assert DemoConfig.from_yaml(path).mix_lambda == 0.7


def test_unknown_yaml_key_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("mix_lamda: 0.7\n")
    with pytest.raises(ConfigError, match="unknown key 'mix_lamda'"):
        parse(["--config", str(path)])
    path.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        parse(["--config", str(path)])


def test_yaml_round_trip(tmp_path):
    cfg = DemoConfig(mix_lambda=0.25, seeds=[3, 4])
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert DemoConfig.from_yaml(path) == cfg
