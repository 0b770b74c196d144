"""CompareConfig: per-method learning rates, the seeds of targets and corpus."""

from pathlib import Path

import pytest

from mixsd.errors import ConfigError
from mixsd.experiment import CompareConfig, parse_method, targets_path


def test_method_lr_overrides_lr_by_spec_then_kind():
    cfg = CompareConfig(methods=["sft", "mixsd:0.5", "mixsd:0.5@toy-own", "opsd"],
                        lr=[1e-3, 3e-3], method_lr=["opsd=1e-2", "opsd=3e-2",
                                                    "mixsd:0.5@toy-own=2e-3"])
    lrs = {s.name: cfg.lrs_for(s) for s in cfg.method_specs()}
    assert lrs == {"sft": [1e-3, 3e-3], "mixsd:0.5": [1e-3, 3e-3],
                   "mixsd:0.5@toy-own": [2e-3], "opsd": [1e-2, 3e-2]}
    assert cfg.lrs_for(parse_method("memit")) == [None]


@pytest.mark.parametrize("bad,match", [("opsd", "METHOD=LR"), ("opsd=fast", "METHOD=LR"),
                                       ("dpo=1e-3", "none of the methods")])
def test_bad_method_lr_names_the_flag(bad, match):
    with pytest.raises(ConfigError, match=match) as err:
        CompareConfig(methods=["sft", "opsd"], method_lr=[bad])
    assert "--method-lr" in str(err.value)


def test_targets_follow_the_run_seed_unless_fixed():
    out = Path("o")
    mix, sft = parse_method("mixsd:0.3"), parse_method("sft")
    follow = CompareConfig()
    assert targets_path(follow, mix, 2, out) == out / "targets" / "mixsd-0.3-s2.jsonl"
    assert targets_path(follow, sft, 2, out) == out / "targets" / "sft.jsonl"  # no coins
    fixed = CompareConfig(targets_seed=0)
    assert targets_path(fixed, mix, 2, out) == out / "targets" / "mixsd-0.3.jsonl"


def test_defaults_compare_at_a_high_memorisation_level():
    assert CompareConfig().equal_memorization == 0.8
    assert CompareConfig().corpus_seed == 0


def test_the_toy_corpus_follows_corpus_seed(tmp_path):
    from mixsd.experiment import prepare_corpus

    _, a = prepare_corpus(CompareConfig(n_facts=5, corpus_seed=0), tmp_path / "a")
    _, b = prepare_corpus(CompareConfig(n_facts=5, corpus_seed=1), tmp_path / "b")
    assert [r.id for r in a] != [r.id for r in b] or [r.answer for r in a] != [r.answer for r in b]
