"""CompareConfig: per-method learning rates, the seeds of targets and corpus."""


import pytest

from mixsd.compare.config import CompareConfig
from mixsd.compare.keys import targets_path
from mixsd.compare.plan import RunPlan, targets_config, train_config
from mixsd.errors import ConfigError
from mixsd.methods import parse_method


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


def test_targets_follow_the_run_seed_unless_fixed(tmp_path):
    out = tmp_path / "o"
    mix, sft = parse_method("mixsd:0.3"), parse_method("sft")
    follow = CompareConfig()
    assert targets_path(follow, mix, 2, out) == out / "targets" / "mixsd-0.3-s2"
    assert targets_path(follow, sft, 2, out) == out / "targets" / "sft"  # no coins
    fixed = CompareConfig(targets_seed=0)
    assert targets_path(fixed, mix, 2, out) == out / "targets" / "mixsd-0.3"
    # a comparison made before targets became folders: its files are reused
    (out / "targets").mkdir(parents=True)
    (out / "targets" / "mixsd-0.3-s2.jsonl").write_text("")
    assert targets_path(follow, mix, 2, out) == out / "targets" / "mixsd-0.3-s2.jsonl"
    assert targets_path(follow, sft, 2, out) == out / "targets" / "sft"


def test_defaults_compare_at_a_high_memorisation_level():
    assert CompareConfig().equal_memorization == 0.8
    assert CompareConfig().corpus_seed == 0


def test_the_toy_corpus_follows_corpus_seed(tmp_path):
    from mixsd.compare.context import prepare_corpus

    _, a = prepare_corpus(CompareConfig(n_facts=5, corpus_seed=0), tmp_path / "a")
    _, b = prepare_corpus(CompareConfig(n_facts=5, corpus_seed=1), tmp_path / "b")
    assert [r.id for r in a] != [r.id for r in b] or [r.answer for r in a] != [r.answer for r in b]


# What config.yaml and results.json record of a comparison made with the defaults (before the
# fields passed on to the stages were inherited from them): unchanged, key for key.
RECORDED_DEFAULTS = {'model': 'toy', 'corpus': 'toy', 'methods': ['sft', 'sd0', 'mixsd:0.3', 'mixsd:0.5', 'mixsd:0.7', 'opsd'], 'epochs': 3, 'lr': [1e-05], 'method_lr': [], 'seeds': [0], 'targets_seed': None, 'corpus_seed': 0, 'out': 'runs/compare', 'suites': [], 'guidance': 'auto', 'extractor': 'auto', 'n_facts': None, 'eval_items': 200, 'batch_size': 16, 'eval_batch_size': 64, 'max_new_tokens': 64, 'max_retries': 10, 'temperature': 0.0, 'top_k': 64, 'lora': False, 'include_unverified': False, 'warmup_steps': 0, 'keep': 'selected,last', 'stop_patience': 0, 'stop_at': None, 'opsd_rollouts': 2, 'divergence': 'reverse_kl', 'fisher_examples': 200, 'equal_memorization': 0.8, 'rounds': 1, 'quiet': True, 'edit_config': '', 'device': 'auto', 'report': True}


def test_inherited_fields_keep_the_recorded_config():
    """What fingerprints a comparison made with the defaults is unchanged, key for key:
    fields added since (declared later) are left out at their default."""
    assert CompareConfig().decisive_dict() == RECORDED_DEFAULTS  # key order: not hashed
    later = CompareConfig.later_defaults()
    assert {"verify_entities", "lambda_fallback", "retry_temperature", "retention_levels",
            "eval_splits"} <= set(later)
    assert set(CompareConfig().to_dict()) == set(RECORDED_DEFAULTS) | set(later)
    assert CompareConfig.from_dict({"verify_entities": True}).decisive_dict()[
        "verify_entities"] is True


def test_a_comparison_folder_made_before_a_later_field_resumes(tmp_path):
    """An OUT whose run.json fingerprinted the recorded defaults (no later field) resumes
    under today's config; one that recorded a later field at its default resumes too."""
    from mixsd.artifacts import Reuse, open_stage
    from mixsd.compare.keys import EXTENDABLE_FIELDS, open_out_dir
    from mixsd.errors import MixsdError

    old = tmp_path / "old"
    open_stage(old, "comparison", RECORDED_DEFAULTS, reuse=Reuse(mutable=EXTENDABLE_FIELDS)).write_info(
        CompareConfig(), status="running")
    assert open_out_dir(CompareConfig(), old).state == "resume"
    recorded = tmp_path / "recorded"
    open_stage(recorded, "comparison", CompareConfig().to_dict(),
               reuse=Reuse(mutable=EXTENDABLE_FIELDS)).write_info(
        CompareConfig(), status="running")
    assert open_out_dir(CompareConfig(), recorded).state == "resume"
    with pytest.raises(MixsdError, match="verify_entities"):
        open_out_dir(CompareConfig.from_dict({"verify_entities": True}), old)


def test_the_stages_are_the_stages_configs_with_the_comparisons_defaults():
    import dataclasses

    from mixsd.evaluation.config import EvalConfig
    from mixsd.targets.config import TargetsConfig
    from mixsd.training.config import TrainConfig

    cfg = CompareConfig()
    assert (type(cfg.targets), type(cfg.train), type(cfg.eval)) == \
        (TargetsConfig, TrainConfig, EvalConfig)
    # where the comparison's default differs from the stage's, on purpose
    assert (cfg.max_new_tokens, TargetsConfig().max_new_tokens) == (64, 256)
    assert (cfg.train.rollouts, TrainConfig().rollouts) == (2, 4)
    # a value the stages share is the comparison's, set into each stage that has it
    assert cfg.targets.max_new_tokens == cfg.train.max_new_tokens == cfg.eval.max_new_tokens
    assert cfg.targets.batch_size == cfg.eval.batch_size == cfg.eval_batch_size == 64
    assert cfg.top_k == cfg.targets.top_k == cfg.train.top_k == TargetsConfig().top_k
    stages = {"targets": TargetsConfig, "train": TrainConfig, "eval": EvalConfig}
    shared = 0
    for f in dataclasses.fields(CompareConfig):
        for alias in f.metadata.get("aliases", ())[:1]:
            stage, _, name = alias.partition(".")
            source = {g.name: g for g in dataclasses.fields(stages[stage])}[name]
            assert f.metadata["help"].startswith(source.metadata["help"]), f.name
            shared += 1
    assert shared >= 10


def test_stage_keys_set_the_comparisons_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("targets:\n  max_new_tokens: 32\ntrain.rollouts: 3\neval:\n  toy_items: 50\n")
    cfg = CompareConfig.from_yaml(path)
    assert (cfg.max_new_tokens, cfg.train.rollouts, cfg.eval.suite_options) == \
        (32, 3, {"toy_items": 50})
    recorded = cfg.to_dict()
    assert (recorded["opsd_rollouts"], recorded["eval_items"]) == (3, 50)
    assert "targets.max_new_tokens" not in recorded
    assert CompareConfig.from_yaml(path).to_dict() == \
        CompareConfig.from_dict(recorded).to_dict()  # config.yaml reads back
    with pytest.raises(ConfigError, match="'max_new_tokens' and 'eval.max_new_tokens' set"):
        CompareConfig.from_dict({"max_new_tokens": 32, "eval.max_new_tokens": 48})


def test_a_stage_key_without_a_flat_name_reaches_every_run_and_its_fingerprint(tmp_path):
    """Any stage key the plan does not set answers to STAGE.KEY (YAML and flags): it
    reaches each run's stage config and the comparison's fingerprint, and at its default it
    leaves both as they were."""
    import argparse

    from mixsd.artifacts import fingerprint

    spec = parse_method("mixsd:0.3")
    plan = RunPlan(spec, 1e-5, 0, "run", tmp_path, tmp_path, targets=tmp_path)
    parser = argparse.ArgumentParser()
    CompareConfig.add_arguments(parser)
    cfg = CompareConfig.from_args(parser.parse_args(
        ["--train.weight-decay", "0.1", "--targets.stop_tokens", "</s>"]))
    assert train_config(cfg, plan).weight_decay == 0.1
    assert targets_config(cfg, spec, 0).stop_tokens == ["</s>"]
    assert cfg.to_dict()["train.weight_decay"] == 0.1
    plain = CompareConfig()
    assert "train.weight_decay" not in plain.to_dict()
    assert fingerprint(cfg.decisive_dict()) != fingerprint(plain.decisive_dict())
    assert train_config(plain, plan).weight_decay == 0.0


def test_what_the_plan_sets_is_no_key_and_errors_name_the_comparisons_flags():
    with pytest.raises(ConfigError, match="unknown key 'train.lr'"):
        CompareConfig.from_dict({"train.lr": 1e-3})  # the grid's --lr sets it
    with pytest.raises(ConfigError, match=r"opsd_rollouts must be in .*\(flag --opsd-rollouts\)"):
        CompareConfig.from_dict({"opsd_rollouts": 0})
    with pytest.raises(ConfigError, match=r"unknown suite .*\(flag --suites\)"):
        CompareConfig.from_dict({"suites": ["nope"]})
    with pytest.raises(ConfigError, match=r"train.weight_decay must be in .*"
                                          r"\(flag --train.weight-decay\)"):
        CompareConfig.from_dict({"train": {"weight_decay": -1}})


def test_training_knobs_pass_through_and_keep_old_fingerprints(tmp_path):
    """dtype, grad accumulation, LoRA rank/alpha, scheduler, revision and trust_remote_code
    reach every run's TrainConfig (and the hub options the targets' too); at their defaults
    the comparison's and each run's fingerprints are what they were."""
    from mixsd.training.config import TrainConfig

    spec = parse_method("mixsd:0.3")
    plain = CompareConfig()
    new = ("lora_r", "lora_alpha", "grad_accum", "lr_scheduler", "dtype", "revision",
           "trust_remote_code")
    assert not set(new) & set(plain.decisive_dict())
    plan = RunPlan(spec, 1e-5, 0, "run", tmp_path, tmp_path, targets=tmp_path)
    run = train_config(plain, plan)
    assert run.decisive_dict() == TrainConfig(**{k: getattr(run, k) for k in (
        "model", "method", "targets", "out", "epochs", "lr", "batch_size", "seed", "lora",
        "warmup_steps", "stop_patience", "stop_at", "stop_above", "guidance", "device",
        "include_unverified", "keep", "progress")}).decisive_dict()
    cfg = CompareConfig.from_dict({"lora": True, "lora_r": 8, "train.lora_alpha": 16,
                                   "grad_accum": 4, "lr_scheduler": "cosine",
                                   "dtype": "bfloat16", "revision": "v2",
                                   "trust_remote_code": True})
    run = train_config(cfg, plan)
    assert (run.lora_r, run.lora_alpha, run.grad_accum, run.lr_scheduler, run.dtype) == \
        (8, 16.0, 4, "cosine", "bfloat16")
    assert run.hub_options() == {"revision": "v2", "trust_remote_code": True}
    assert targets_config(cfg, spec, 0).hub_options() == run.hub_options()
    with pytest.raises(ConfigError, match="lr_scheduler"):
        CompareConfig.from_dict({"lr_scheduler": "linear"})


def test_public_entry_points_import_from_the_package():
    import mixsd
    from mixsd import CompareConfig as Compare
    from mixsd import TrainConfig, export_targets, run_compare, run_eval, train

    assert Compare is CompareConfig and callable(run_compare) and callable(train)
    assert TrainConfig.stage == "train" and callable(run_eval) and callable(export_targets)
    assert set(mixsd.__all__) >= {"train", "run_compare", "run_targets", "run_eval"}
