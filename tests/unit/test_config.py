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


# -- composed configs: inherit() and dotted keys ---------------------------------------------
@dataclass
class StageA(StageConfig):
    stage = "a"
    max_new_tokens: int = option(256, "most tokens generated", min=1)
    method: str = option("mixsd", "which targets", choices=["mixsd", "sft"])
    seeds: list[int] = option(help="seeds", default_factory=lambda: [0, 1])


@dataclass
class Composite(StageConfig):
    from mixsd.config import inherit

    max_new_tokens: int = inherit(StageA, "max_new_tokens", default=64, also=("b.max_new_tokens",))
    method: str = inherit(StageA, "method", note="; of every run")
    run_seeds: list[int] = inherit(StageA, "seeds")
    del inherit


def parse_composite(argv):
    parser = argparse.ArgumentParser()
    Composite.add_arguments(parser)
    return Composite.from_args(parser.parse_args(argv)), parser


def test_inherit_takes_help_range_choices_and_default_from_the_stage():
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(Composite)}
    assert Composite() == Composite(max_new_tokens=64, method="mixsd", run_seeds=[0, 1])
    assert fields["max_new_tokens"].metadata["help"] == "most tokens generated"
    assert fields["method"].metadata["help"] == "which targets; of every run"
    with pytest.raises(ConfigError, match=r"max_new_tokens must be in \[1, inf\], got 0 "
                       r"\(flag --max-new-tokens\)"):
        Composite(max_new_tokens=0)
    with pytest.raises(ConfigError, match="method must be one of mixsd, sft, got 'x' "
                       r"\(flag --method\)"):
        Composite(method="x")
    assert Composite().to_dict() == {"max_new_tokens": 64, "method": "mixsd", "run_seeds": [0, 1]}


def test_dotted_nested_and_flat_keys_set_the_same_field(tmp_path):
    assert Composite.from_dict({"a.max_new_tokens": 32}).max_new_tokens == 32
    assert Composite.from_dict({"a": {"max_new_tokens": 32, "seeds": [5]}}) == Composite(
        max_new_tokens=32, run_seeds=[5])
    assert Composite.from_dict({"b.max_new_tokens": 16}).max_new_tokens == 16
    path = tmp_path / "c.yaml"
    path.write_text("a:\n  max_new_tokens: 32\nmethod: sft\n")
    cfg, _ = parse_composite(["--config", str(path)])
    assert (cfg.max_new_tokens, cfg.method) == (32, "sft")
    assert Composite.from_yaml(path, max_new_tokens=8).max_new_tokens == 8
    cfg, _ = parse_composite(["--config", str(path), "--max-new-tokens", "8"])
    assert cfg.max_new_tokens == 8  # a flag beats the file, whichever key the file used
    cfg, _ = parse_composite(["--a.max-new-tokens", "12", "--a.seeds", "3,4"])
    assert (cfg.max_new_tokens, cfg.run_seeds) == (12, [3, 4])
    cfg, _ = parse_composite(["--b.max_new_tokens", "7"])
    assert cfg.max_new_tokens == 7


def test_dotted_key_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown key 'a.nope'.*dotted keys: a.max_new_tokens"):
        Composite.from_dict({"a.nope": 1})
    with pytest.raises(ConfigError, match="'max_new_tokens' and 'a.max_new_tokens' set the same "
                       r"value \(max_new_tokens\) differently: 10 vs 20"):
        Composite.from_dict({"max_new_tokens": 10, "a.max_new_tokens": 20})
    assert Composite.from_dict({"max_new_tokens": 10, "a.max_new_tokens": 10}).max_new_tokens == 10


def test_dotted_flags_stay_out_of_the_help():
    _, parser = parse_composite([])
    text = " ".join(parser.format_help().split())
    assert "[also a.max_new_tokens, b.max_new_tokens]" in text
    assert "--a.max" not in text
