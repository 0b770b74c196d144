"""The pieces the grid runner is made of: a run as stage configs, the grid's order, corpus
loading, the Fisher switch, the targets summary and the text table."""

import json

import pytest

from mixsd.analysis.fisher import FisherReference
from mixsd.compare.config import CompareConfig
from mixsd.compare.plan import RunPlan, targets_config, train_config
from mixsd.corpora.load import load_corpus
from mixsd.errors import ConfigError, MixsdError
from mixsd.evaluation.results import RunId, make_base, make_results, make_run, target_summaries
from mixsd.methods import parse_method
from mixsd.report.tables import results_text


def test_a_run_becomes_the_stage_configs(tmp_path):
    cfg = CompareConfig.from_dict(dict(
        model="m", max_new_tokens=32, top_k=8, eval_batch_size=7, temperature=0.5,
        max_retries=3, guidance="knowledge", seeds=[0, 4], opsd_rollouts=3, batch_size=5,
        epochs=2, stop_patience=1))
    mix = parse_method("mixsd:0.3/word")
    t = targets_config(cfg, mix, 4)
    assert (t.method, t.mix_lambda, t.mix_unit, t.seed) == ("mixsd", 0.3, "word", 4)
    assert (t.max_new_tokens, t.top_k, t.batch_size, t.temperature, t.max_retries) == \
        (32, 8, 7, 0.5, 3)
    assert targets_config(cfg, parse_method("sft"), 4).seed == 0  # y* has no coins
    sft = train_config(cfg, RunPlan(parse_method("sft"), 1e-3, 4, "sft", tmp_path / "r",
                                    tmp_path / "d.jsonl", targets=tmp_path / "t.jsonl"), 0.25)
    assert (sft.method, sft.targets, sft.lr, sft.seed, sft.stop_above, sft.model) == \
        ("nll", str(tmp_path / "t.jsonl"), 1e-3, 4, 0.25, "m")
    assert (sft.batch_size, sft.epochs, sft.stop_patience) == (5, 2, 1)
    opsd = train_config(cfg, RunPlan(parse_method("opsd"), 1e-2, 0, "opsd", tmp_path / "r",
                                     tmp_path / "d.jsonl"), start=tmp_path / "prev")
    assert (opsd.method, opsd.data, opsd.rollouts, opsd.max_new_tokens, opsd.top_k) == \
        ("opsd", str(tmp_path / "d.jsonl"), 3, 32, 8)
    assert opsd.model == str(tmp_path / "prev")


def test_the_grid_runs_seed_by_seed_and_an_edit_once_at_the_end():
    cfg = CompareConfig(methods=["memit", "sft"], lr=[1e-3, 1e-2], seeds=[0, 1])
    assert [(s.name, lr, seed) for s, lr, seed in cfg.grid()] == [
        ("sft", 1e-3, 0), ("sft", 1e-2, 0), ("sft", 1e-3, 1), ("sft", 1e-2, 1),
        ("memit", None, 0)]


def test_the_verification_options_and_the_lambda_fallback_reach_the_targets_stage():
    cfg = CompareConfig.from_dict(dict(
        methods=["sd0", "mixsd:0.3", "mixsd:0.5/word"], verify_entities=True,
        verify_round_trip=True, lambda_fallback=[0.3, 0.15, 0.0], retry_temperature=0.7))
    cfg.validate()
    by_name = {s.name: targets_config(cfg, s, 0) for s in cfg.method_specs()}
    for targets in by_name.values():
        targets.validate()
        assert (targets.verify_entities, targets.verify_round_trip) == (True, True)
        assert targets.retry_temperature == 0.7
    # each method falls back only to lambdas below its own
    assert by_name["mixsd:0.5/word"].lambda_fallback == [0.3, 0.15, 0.0]
    assert by_name["mixsd:0.3"].lambda_fallback == [0.15, 0.0]
    assert by_name["sd0"].lambda_fallback == []
    plain = targets_config(CompareConfig(methods=["mixsd:0.5"]), parse_method("mixsd:0.5"), 0)
    assert (plain.verify_entities, plain.lambda_fallback) == (False, [])


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_load_corpus_keeps_the_evaluation_records_of_the_first_facts(tmp_path):
    rows = [{"id": f"f{i}", "prompt": f"q{i}?", "answer": f"a{i}", "answer_key": f"a{i}",
             "subject": f"s{i}"} for i in range(3)]
    rows += [{"id": f"e{i}", "prompt": f"p{i}?", "answer": f"a{i}", "answer_key": f"a{i}",
              "subject": f"s{i}", "split": "eval"} for i in range(3)]
    corpus = load_corpus(str(_write(tmp_path / "c.jsonl", rows)), model="m", n_facts=2)
    assert [r.id for r in corpus.train] == ["f0", "f1"]
    assert [r.id for r in corpus.records] == ["f0", "f1", "e0", "e1"]
    assert len(load_corpus(str(tmp_path / "c.jsonl"), model="m").records) == 6


def test_load_corpus_refuses_what_it_cannot_train_on(tmp_path):
    (tmp_path / "folder").mkdir()
    with pytest.raises(MixsdError, match="needs train.jsonl"):
        load_corpus(str(tmp_path / "folder"), model="m")
    only_eval = [{"id": "e", "prompt": "p?", "answer": "a", "answer_key": "a", "split": "eval"}]
    with pytest.raises(MixsdError, match="no training records"):
        load_corpus(str(_write(tmp_path / "e.jsonl", only_eval)), model="m")
    with pytest.raises(ConfigError, match="--corpus"):
        load_corpus("toy", model="some/hub-model")


def test_fisher_is_off_without_examples_or_suites():
    assert FisherReference(None, None, {"s": object()}, max_examples=0).displacement("x") is None
    assert FisherReference(None, None, {}, max_examples=10).displacement("x") is None


def test_target_summaries_average_files_and_add_seconds():
    got = target_summaries({"mixsd-0.5": [{"records": 10, "verified": 8, "wall_s": 2.0},
                                          {"records": 10, "verified": 6, "wall_s": 3.0}],
                            "sft": [{}]})
    assert got["mixsd-0.5"].verified == 7 and got["mixsd-0.5"].wall_s == 5.0
    assert got["mixsd-0.5"].files == 2
    assert got["sft"].records is None and got["sft"].files == 1


def _results(seeds):
    epochs = [{"epoch": 1, "memorization": 0.5, "paraphrase": 0.25, "score/toy:x": 0.4}]
    runs = [make_run(RunId("sft", None, 1e-3, s), epochs, base_scores={"toy:x": 0.5}, seconds=12.0)
            for s in seeds]
    return make_results(make_base({"toy:x": 0.5}, memorization=0.0), runs,
                        equal_memorization={"level": 0.5, "retention_mean": {}})


def test_results_text_one_row_per_run_or_per_group():
    lines = results_text(_results([0])).splitlines()
    assert lines[0].split() == ["run", "ep", "memo", "para", "x%", "ret%", "ret%@m0.50",
                                "tgtNLL", "fisher", "sec"]
    assert set(lines[1]) == {"-"} and lines[2].startswith("base model")
    assert lines[3].split()[-6:-4] == ["80", "80"] and lines[3].split()[-1] == "12"  # 0.4/0.5
    grouped = results_text(_results([0, 1]))
    assert "base model" not in grouped and "±" in grouped
