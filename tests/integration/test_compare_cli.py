"""A reduced `mixsd compare` end to end: a handful of facts, 2 epochs, 2 methods."""

import json

import pytest

from mixsd.cli import main
from mixsd.compare import CompareConfig
from mixsd.errors import ConfigError
from mixsd.evaluation.results import read_results
from mixsd.methods import parse_method
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

FACTS = [("where was alice born ?", "oslo"), ("where was bob born ?", "lima"),
         ("where was carol born ?", "rome"), ("where was dave born ?", "paris")]


@pytest.fixture
def setup(tmp_path):
    tok = tiny_tokenizer()
    model_dir = save_tiny(tmp_path / "model", tiny_llama(tok, hidden=32), tok)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({
        "id": f"f{i}", "prompt": q, "answer": f"the answer is {a} .", "answer_key": a,
        "paraphrases": [q.replace("where was", "what city was")]}) + "\n"
        for i, (q, a) in enumerate(FACTS)))
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"{w} is the city of", "answer":
                                        "red", "answer_key": "red"}) + "\n"
                            for i, w in enumerate(["alice", "bob", "erin"])))
    return model_dir, data, held


def test_reduced_compare_writes_results_and_report(setup, tmp_path, capsys, monkeypatch):
    model_dir, data, held = setup
    out = tmp_path / "cmp"
    argv = ["compare", "--model", model_dir, "--corpus", str(data), "--methods", "sft,mixsd:0.5",
            "--epochs", "2", "--lr", "1e-2", "--seeds", "0", "--out", str(out),
            "--suites", f"records:{held}", "--max-new-tokens", "6", "--batch-size", "2",
            "--fisher-examples", "3", "--device", "cpu", "--max-retries", "0",
            "--include-unverified"]  # a random model verifies nothing
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "base model" in printed and "mixsd:0.5 lr=0.01 seed=0" in printed
    results = read_results(out / "results.json")
    assert [r["method"] for r in results["runs"]] == ["sft", "mixsd"]
    for run in results["runs"]:
        assert len(run["epochs"]) == 2 and run["selected_epoch"] in (1, 2)
        assert run["target_nll"] > 0 and run["fisher"]["total"] >= 0
        assert set(run["retention"]) == {f"records:{held}"}
        buckets = run["error_buckets"][f"records:{held}"]
        wrong = round((1 - run["scores"][f"records:{held}"]) * 3)
        assert sum(buckets.values()) == wrong
        assert (out / "runs" / f"{run['label']}-lr0.01-s0" / "epoch-2").is_dir()
    assert results["base"]["memorization"] is not None
    # SFT targets are y* itself, so their NLL under the base differs from MixSD's
    assert results["target_nll"]["sft"] != results["target_nll"]["mixsd-0.5-s0"]
    assert (out / "report" / "report.html").stat().st_size > 1000
    assert list((out / "report").glob("*.png"))
    # a second run reuses every artifact
    before = (out / "results.json").read_text()
    assert main(argv) == 0
    after = json.loads((out / "results.json").read_text())
    assert after["runs"] == json.loads(before)["runs"]
    assert sorted(p.name for p in (out / "targets").iterdir()) == ["mixsd-0.5-s0", "sft"]
    assert (out / "targets" / "sft" / "targets.jsonl").is_file()
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    # a comparison folder from before the artifact layer keeps working, recomputing nothing
    _to_old_layout(out)
    monkeypatch.setattr("mixsd.targets.run_targets", _must_not_run)
    monkeypatch.setattr("mixsd.training.train", _must_not_run)
    assert main(argv) == 0
    old = json.loads((out / "results.json").read_text())
    assert old["runs"] == after["runs"] and old["base"] == after["base"]
    assert old["target_nll"] == after["target_nll"] and old["targets"] == after["targets"]
    assert sorted(p.name for p in (out / "targets").iterdir()) == [
        "mixsd-0.5-s0.jsonl", "mixsd-0.5-s0.jsonl.config.yaml", "mixsd-0.5-s0.jsonl.run.json",
        "sft.jsonl", "sft.jsonl.config.yaml", "sft.jsonl.run.json"]
    # --collect-only reads a grid stopped early: the complete runs, the others listed
    assert main([*argv, "--lr", "1e-2,5e-3", "--collect-only"]) == 0
    partial = json.loads((out / "results.json").read_text())
    assert partial["runs"] == after["runs"]
    assert partial["missing_runs"] == ["sft lr=0.005 seed=0", "mixsd:0.5 lr=0.005 seed=0"]
    assert not (out / "runs" / "sft-lr0.005-s0").exists()  # nothing was trained
    assert "missing" in (out / "report" / "report.md").read_text()
    # and refuses another config, naming the field
    assert main([*argv, "--epochs", "3"]) == 2
    assert "other values of epochs;" in capsys.readouterr().err


def _must_not_run(*args, **kw):
    raise AssertionError("an artifact was recomputed")


def _to_old_layout(out):
    """Rewrite a comparison folder as mixsd wrote it before mixsd.artifacts: single targets
    files with sidecars, plain base.json and entry.json, a run.json without fingerprint."""
    import shutil

    for folder in [p for p in (out / "targets").iterdir() if p.is_dir()]:
        file = out / "targets" / f"{folder.name}.jsonl"
        (folder / "targets.jsonl").rename(file)
        (folder / "run.json").rename(f"{file}.run.json")
        (folder / "config.yaml").rename(f"{file}.config.yaml")
        shutil.rmtree(folder)
    for path in [out / "base.json", *(out / "runs").glob("*/entry.json")]:
        (value,) = json.loads(path.read_text()).values()
        path.write_text(json.dumps(value))
    info = json.loads((out / "run.json").read_text())
    for key in ("fingerprint", "fields", "stage"):
        info.pop(key)
    (out / "run.json").write_text(json.dumps(info))


def test_method_specs():
    assert parse_method("mixsd:0.3@toy-own").label == "mixsd-0.3-toy-own"
    assert parse_method("mixsd:0.3").mix_unit == "token"
    span = parse_method("mixsd:0.5/span@toy-own")
    assert (span.mix_unit, span.mix_lambda, span.guidance) == ("span", 0.5, "toy-own")
    assert span.label == "mixsd-0.5-span-toy-own"
    assert parse_method("mixsd:0.5/word").label == "mixsd-0.5-word"
    for bad in ("mixsd:0.5/clause", "sft/word", "sd0/span"):
        with pytest.raises(ConfigError, match="mixing unit"):
            parse_method(bad)
    assert parse_method("sd0").mix_lambda == 0.0
    with pytest.raises(ConfigError, match="needs a lambda"):
        parse_method("mixsd")
    with pytest.raises(ConfigError, match=r"lambda must be in \[0, 1\]"):
        parse_method("mixsd:1.5")
    with pytest.raises(ConfigError, match="unknown method"):
        parse_method("dpo")
    with pytest.raises(ConfigError, match="once"):
        CompareConfig(methods=["sft", "sft"])


def test_bad_corpus_is_a_clear_error(tmp_path, capsys):
    assert main(["compare", "--model", "toy", "--corpus", str(tmp_path / "none.jsonl"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_out_dir_of_another_config_is_refused_but_the_grid_may_grow(tmp_path):
    from mixsd.compare.keys import check_out_dir, open_out_dir
    from mixsd.errors import MixsdError
    from mixsd.io import write_run_info

    first = CompareConfig.from_dict(dict(out=str(tmp_path), epochs=2))
    write_run_info(tmp_path, first)
    check_out_dir(CompareConfig.from_dict(dict(out=str(tmp_path), epochs=2, seeds=[0, 1], lr=[1e-3])), tmp_path)
    with pytest.raises(MixsdError, match=r"holds a comparison made with other values of epochs; "
                       r"re-run the same command to resume it, pass --overwrite to replace "
                       r"it, or choose another --out$"):
        check_out_dir(CompareConfig.from_dict(dict(out=str(tmp_path), epochs=3)), tmp_path)
    # a comparison's run.json records its fingerprint: the refusal names the field too
    open_out_dir(first, tmp_path).write_info(first, status="running")
    assert json.loads((tmp_path / "run.json").read_text())["fields"]["epochs"] == 2
    check_out_dir(CompareConfig.from_dict(dict(out=str(tmp_path), epochs=2, seeds=[0, 1])), tmp_path)
    with pytest.raises(MixsdError, match="other values of epochs;"):
        check_out_dir(CompareConfig.from_dict(dict(out=str(tmp_path), epochs=3)), tmp_path)


def test_compare_with_a_mixing_unit(setup, tmp_path, capsys):
    """sft beside mixsd:0.5/span: the span targets are built with that unit and resumed."""
    model_dir, data, held = setup
    out = tmp_path / "cmp-span"
    argv = ["compare", "--model", model_dir, "--corpus", str(data), "--methods",
            "sft,mixsd:0.5/span", "--epochs", "1", "--lr", "1e-2", "--out", str(out),
            "--suites", f"records:{held}", "--max-new-tokens", "6", "--batch-size", "2",
            "--fisher-examples", "0", "--device", "cpu", "--max-retries", "0",
            "--include-unverified", "--no-report"]
    assert main(argv) == 0
    assert "mixsd:0.5/span lr=0.01 seed=0" in capsys.readouterr().out
    targets = [json.loads(line) for line in
               (out / "targets" / "mixsd-0.5-span-s0" / "targets.jsonl").read_text().splitlines()]
    assert len(targets) == len(FACTS)
    assert all(t["meta"]["mix_unit"] == "span" and "word_sources" in t["meta"] for t in targets)
    results = read_results(out / "results.json")
    assert [r.get("mix_unit") for r in results["runs"]] == [None, "span"]
    before = (out / "results.json").read_text()
    assert main(argv) == 0  # resumed: every artifact reused
    assert json.loads((out / "results.json").read_text())["runs"] == json.loads(before)["runs"]
