"""EvalConfig: a plug-in's suite options are the plug-in's, not fields of the core config."""

import argparse
import dataclasses

import pytest

from mixsd.errors import ConfigError
from mixsd.evaluation.config import EvalConfig


def test_no_field_of_the_eval_config_is_a_plugins():
    assert not [f.name for f in dataclasses.fields(EvalConfig) if f.name.startswith("toy")]


def test_a_plugins_option_answers_to_its_own_flag_and_key():
    parser = argparse.ArgumentParser()
    EvalConfig.add_arguments(parser)
    config = EvalConfig.from_args(parser.parse_args(["--model", "toy", "--toy-items", "7"]))
    assert config.suite_options == {"toy_items": 7}
    assert EvalConfig.from_dict({"model": "toy", "toy_items": "9"}).suite_options == \
        {"toy_items": 9}
    assert EvalConfig.from_dict({"model": "toy", "suite_options": "toy_seed=3"}) \
        .plugin_options() == {"toy_items": 200, "toy_seed": 3}


def test_an_eval_folders_fingerprint_is_what_it_was():
    """An option that was a field (toy_items) stays in the recorded config at its default;
    one that was not (toy_seed) is there only when set."""
    recorded = EvalConfig(model="toy").decisive_dict()
    assert recorded["toy_items"] == 200 and "toy_seed" not in recorded
    assert "suite_options" not in recorded
    assert EvalConfig(model="toy", suite_options={"toy_seed": 1}).decisive_dict()["toy_seed"] == 1


@pytest.mark.parametrize("values,match", [
    ({"suite_options": {"nope": 1}}, "unknown option 'nope'"),
    ({"toy_items": 0}, r"toy_items must be in \[1, inf\], got 0 \(flag --toy-items\)"),
    ({"toy_items": "many"}, r"toy_items must be of type int"),
])
def test_bad_suite_options_are_refused_naming_them(values, match):
    with pytest.raises(ConfigError, match=match):
        EvalConfig.from_dict({"model": "toy", **values})


def test_a_model_is_needed_to_run_not_to_configure(tmp_path):
    from mixsd.evaluation.run import run_eval

    with pytest.raises(ConfigError, match="model must be given"):
        run_eval(EvalConfig())
