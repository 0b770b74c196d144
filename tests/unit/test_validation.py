"""Every verb validates every value before any model loads, and names the flag at fault."""

from __future__ import annotations

import pytest

from mixsd import cli


@pytest.fixture
def no_model(monkeypatch):
    """Loading a model or tokenizer fails the test: validation must come first."""
    import mixsd.models

    def forbidden(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was validated")

    monkeypatch.setattr(mixsd.models, "load_model_and_tokenizer", forbidden)
    monkeypatch.setattr(mixsd.models, "load_tokenizer", forbidden)


def error_of(argv, capsys) -> str:
    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"mixsd {argv[0]}: error: "), err
    assert "Traceback" not in err
    return err


TARGETS = ["targets", "--model", "toy", "--data", "r.jsonl", "--out", "t.jsonl"]
TRAIN = ["train", "--model", "toy", "--targets", "t.jsonl", "--out", "run"]
EVAL = ["eval", "--model", "toy"]
EDIT = ["edit", "--model", "toy", "--data", "r.jsonl"]
COMPARE = ["compare", "--model", "toy", "--corpus", "toy"]
CASES = [
    (TARGETS + ["--device", "gpu"], "device must be auto, cpu, mps, cuda or cuda:N, got 'gpu' "
     "(flag --device)"),
    (TARGETS + ["--dtype", "fp8"], "dtype must be auto, float32, bfloat16 or float16, got 'fp8' "
     "(flag --dtype)"),
    (TARGETS + ["--extractor", "nope"], "extractor must be one of .* (flag --extractor)"),
    (TARGETS + ["--guidance", "nope"], "guidance must be one of auto, .*knowledge.*, got 'nope' "
     "(flag --guidance)"),
    (TRAIN + ["--guidance", "nope"], "got 'nope' (flag --guidance)"),
    (TRAIN + ["--device", "gpu"], "device must be one of auto, cpu, cuda, got 'gpu' "
     "(flag --device)"),
    (EVAL + ["--suite", "nope"], "unknown suite 'nope'.*(flag --suite)"),
    (EVAL + ["--suite", "records:/no/such.jsonl"], "file not found: /no/such.jsonl "
     "(flag --suite)"),
    (EVAL + ["--suite", "toy:nope"], "unknown toy suite 'nope'.*(flag --suite)"),
    (EVAL + ["--suite", "lmeval:"], "needs a task name.*(flag --suite)"),
    (EVAL + ["--device", "cuda:x"], "got 'cuda:x' (flag --device)"),
    (EVAL + ["--dtype", "half"], "got 'half' (flag --dtype)"),
    (EVAL + ["--guidance", "nope"], "got 'nope' (flag --guidance)"),
    (EDIT + ["--guidance", "nope"], "got 'nope' (flag --guidance)"),
    (EDIT + ["--device", "gpu"], "got 'gpu' (flag --device)"),
    (COMPARE + ["--extractor", "nope"], "extractor must be one of .* (flag --extractor)"),
    (COMPARE + ["--guidance", "nope"], "got 'nope' (flag --guidance)"),
    (COMPARE + ["--suites", "nope"], "unknown suite 'nope'.*(flag --suites)"),
    (COMPARE + ["--suites", "math:/no/such.jsonl"], "file not found.*(flag --suites)"),
    (COMPARE + ["--methods", "sft,mixsd:0.3@nope"], "methods: mixsd:0.3@nope: guidance must be "
     "one of .* (flag --methods)"),
    (COMPARE + ["--methods", "sft,mixsd:1.5"], "lambda must be in [0, 1].*(flag --methods)"),
    (COMPARE + ["--device", "gpu"], "got 'gpu' (flag --device)"),
    (COMPARE + ["--methods", "sft,memit", "--edit-config", "/no/such.yaml"],
     "config file not found: /no/such.yaml (flag --edit-config)"),
    (COMPARE + ["--targets.max-new-tokens", "0"], r"max_new_tokens must be in [1, inf], got 0 "
     "(flag --max-new-tokens)"),
    (["demo", "--suites", "nope"], "unknown suite 'nope'.*(flag --suites)"),
]


@pytest.mark.parametrize(("argv", "match"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_a_bad_value_fails_before_any_model_loads(argv, match, no_model, capsys, tmp_path,
                                                  monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    err = error_of(argv, capsys)
    pattern = re.escape(match).replace(re.escape(".*"), ".*")
    assert re.search(pattern, err), err
    assert not (tmp_path / "runs").exists()  # nothing written either


def test_a_bad_memit_edit_value_fails_before_any_model_loads(no_model, capsys, tmp_path):
    bad = tmp_path / "edit.yaml"
    bad.write_text("cov_weight: -1\n")
    err = error_of(COMPARE + ["--methods", "sft,memit", "--edit-config", str(bad),
                              "--out", str(tmp_path / "out")], capsys)
    assert "cov_weight must be in [0, inf], got -1 (flag --cov-weight)" in err
    assert not (tmp_path / "out").exists()


NEW_CASES = [
    (["analyze", "nll", "--targets", "t.jsonl"], "model is required (flag --model)"),
    (["analyze", "nll", "--model", "toy"], "targets is required (flag --targets)"),
    (["analyze", "nll", "--model", "toy", "--targets", "a.jsonl", "--batch-size", "0"],
     "batch_size must be in [1, inf], got 0 (flag --batch-size)"),
    (["analyze", "nll", "--model", "toy", "--targets", "a.jsonl", "--guidance", "nope"],
     "got 'nope' (flag --guidance)"),
    (["analyze", "fisher", "--model", "toy", "--checkpoints", "c", "--suite", "nope"],
     "unknown suite 'nope'.*(flag --suite)"),
    (["analyze", "fisher", "--model", "toy", "--checkpoints", "c", "--suite", "toy:recall",
      "--max-examples", "0"], "max_examples must be in [1, inf], got 0 (flag --max-examples)"),
    (["analyze", "fisher", "--model", "toy", "--checkpoints", "c", "--suite", "toy:recall",
      "--device", "gpu"], "got 'gpu' (flag --device)"),
    (["analyze", "rules", "--model", "toy", "--data", "r.jsonl", "--lambdas", "0.5,2"],
     "lambdas must be in [0, 1], got 2 (flag --lambdas)"),
    (["analyze", "rules", "--model", "toy", "--data", "r.jsonl", "--units", "token,line"],
     "units must be one of token, word, span, got 'line' (flag --units)"),
    (["analyze", "rules", "--model", "toy", "--data", "r.jsonl", "--extractor", "nope"],
     "(flag --extractor)"),
    (["analyze", "rules", "--model", "toy"], "data is required (flag --data)"),
    (["toy", "build", "--n-items", "0"], "n_items must be in [1, inf], got 0 (flag --n-items)"),
    (["toy", "rebuild"], "action must be one of build, info, got 'rebuild' (flag ACTION)"),
    (["report", "runs/x"], "out is required (flag --out)"),
]


@pytest.mark.parametrize(("argv", "match"), NEW_CASES, ids=[" ".join(c[0]) for c in NEW_CASES])
def test_analyze_toy_and_report_validate_their_configs(argv, match, no_model, capsys, tmp_path,
                                                       monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    err = error_of(argv, capsys)
    pattern = re.escape(match).replace(re.escape(".*"), ".*")
    assert re.search(pattern, err), err


def test_analyze_rules_reads_one_config_file_for_both_configs(tmp_path):
    from mixsd.commands.analyze import rules_configs

    path = tmp_path / "rules.yaml"
    path.write_text("model: toy\ndata: r.jsonl\nlambdas: [0.5]\nunits: [word]\nmax_new_tokens: 24\n")
    parser, _ = cli.build_parser("analyze")
    rules, targets = rules_configs(parser.parse_args(["rules", "--config", str(path),
                                                      "--top-k", "8"]))
    assert (rules.data, rules.lambdas, rules.units) == ("r.jsonl", [0.5], ["word"])
    assert (targets.model, targets.max_new_tokens, targets.top_k) == ("toy", 24, 8)


def test_report_and_toy_configs_come_from_yaml_and_flags(tmp_path):
    from mixsd.report.config import ReportConfig
    from mixsd.toyworld.config import ToyConfig

    path = tmp_path / "r.yaml"
    path.write_text("out: docs/x\nsection: real\n")
    parser, _ = cli.build_parser("report")
    cfg = ReportConfig.from_args(parser.parse_args(["a", "b", "--config", str(path)]))
    assert cfg == ReportConfig(results=["a", "b"], out="docs/x", section="real")
    parser, _ = cli.build_parser("toy")
    cfg = ToyConfig.from_args(parser.parse_args(["build", "--threads", "1", "--force"]))
    assert (cfg.action, cfg.threads, cfg.force, cfg.n_items) == ("build", 1, True, 200)


# -- issue 27: numbers are finite, a learning rate is > 0, a list names its bad item ----------
TARGETS_DIR = ["targets", "--model", "toy", "--data", "r.jsonl", "--out", "t"]
NUMBER_CASES = [
    (TARGETS_DIR + ["--lambda", "nan"], "mix_lambda must be a finite number, got 'nan' "
     "(flag --lambda)"),
    (TARGETS_DIR + ["--temperature", "nan"], "temperature must be a finite number, got 'nan' "
     "(flag --temperature)"),
    (TARGETS_DIR + ["--temperature", "inf"], "temperature must be a finite number, got 'inf'"),
    (TARGETS_DIR + ["--lambda-fallback", "0.2,nan"], "lambda_fallback must be a finite number"),
    (TRAIN + ["--lr", "nan"], "lr must be a finite number, got 'nan' (flag --lr)"),
    (TRAIN + ["--lr=-inf"], "lr must be a finite number, got '-inf' (flag --lr)"),
    (TRAIN + ["--lr", "0"], "lr must be in (0, inf], got 0 (flag --lr)"),
    (TRAIN + ["--stop-metric", "bogus"], "stop_metric 'bogus' is not a metric this run's "
     "epochs record (train_loss, learning_rate;.*(flag --stop-metric)"),
    (TRAIN + ["--stop-patience", "2"], "stop_metric 'memorization' is not a metric this run's"),
    (COMPARE + ["--seeds", "a"], "seeds must be a comma-separated list of int values, got 'a' "
     "(flag --seeds)"),
    (COMPARE + ["--seeds", "0,1.5"], "got '1.5' (flag --seeds)"),
    (COMPARE + ["--lr", "1e-3,nan"], "lr must be a finite number, got 'nan' (flag --lr)"),
    (COMPARE + ["--lr", "0"], "lr must be in (0, inf], got 0 (flag --lr)"),
    (COMPARE + ["--methods", "sft,opsd", "--method-lr", "opsd=nan"],
     "expected METHOD=LR with a finite LR > 0"),
    (COMPARE + ["--stop-at", "nan"], "stop_at must be a finite number"),
]


@pytest.mark.parametrize(("argv", "match"), NUMBER_CASES,
                         ids=[" ".join(c[0]) for c in NUMBER_CASES])
def test_nan_infinity_zero_lr_and_bad_list_items_fail_before_any_model_loads(
        argv, match, no_model, capsys, tmp_path, monkeypatch):
    import re

    monkeypatch.chdir(tmp_path)
    err = error_of(argv, capsys)
    pattern = re.escape(match).replace(re.escape(".*"), ".*")
    assert re.search(pattern, err), err
    assert not (tmp_path / "t").exists() and not (tmp_path / "run").exists()


def test_nan_in_a_yaml_config_is_refused(no_model, capsys, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("mix_lambda: .nan\n")
    err = error_of(["targets", "--config", str(config), "--model", "toy", "--data", "r.jsonl",
                    "--out", str(tmp_path / "t")], capsys)
    assert "mix_lambda must be a finite number, got nan (flag --lambda)" in err


def test_nan_in_a_record_is_refused_naming_file_line_and_field(no_model, capsys, write_jsonl,
                                                               tmp_path):
    good = '{"id": "a", "prompt": "p ?", "answer": "x", "answer_key": "x"}'
    data = write_jsonl([good, '{"id": "b", "prompt": "q ?", "answer": "y", "answer_key": "y", '
                              '"metadata": {"score": NaN}}'], "records.jsonl")
    err = error_of(["targets", "--model", "toy", "--data", str(data), "--out",
                    str(tmp_path / "t")], capsys)
    assert f"{data}:2, field 'score': NaN is not a JSON number" in err
    assert not (tmp_path / "t").exists()


def test_artifacts_are_strict_json(tmp_path):
    import json

    from mixsd.io import atomic_write_json, dumps_line

    def strict(text):
        def refuse(name):
            raise ValueError(name)

        return json.loads(text, parse_constant=refuse)

    path = atomic_write_json(tmp_path / "m.json", {"loss": float("nan"), "x": [float("inf"), 1.5]})
    assert strict(path.read_text()) == {"loss": None, "x": [None, 1.5]}
    assert strict(dumps_line({"meta": {"w": float("-inf")}})) == {"meta": {"w": None}}
