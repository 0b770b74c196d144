"""A GGUF file works wherever a model is accepted: targets, train, eval, analyze, compare."""

import json

import pytest

from mixsd.cli import main

pytest.importorskip("gguf", reason="the gguf package is not installed (pip install gguf)")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mixsd.testing import write_tiny_gguf

    root = tmp_path_factory.mktemp("gguf")
    model = write_tiny_gguf(root / "tiny.gguf")
    records = root / "facts.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "prompt": "hello who", "answer": "he ll", "answer_key": "he",
         "subject": "hello"},
        {"id": "b", "prompt": "hello where", "answer": "ll he", "answer_key": "ll",
         "subject": "hello"}]))
    return root, model, records


@pytest.fixture(autouse=True)
def home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path_factory.getbasetemp() / "gguf-home"))


def test_every_verb_accepts_a_gguf_file(setup, capsys):
    root, model, records = setup
    targets = root / "t"
    assert main(["targets", "--model", model, "--data", str(records), "--out", str(targets),
                 "--lambda", "0.5", "--max-new-tokens", "4", "--max-retries", "0",
                 "--no-progress"]) == 0
    assert len((targets / "targets.jsonl").read_text().splitlines()) == 2
    sft = root / "sft"
    assert main(["targets", "--model", model, "--data", str(records), "--out", str(sft),
                 "--method", "sft"]) == 0
    assert main(["train", "--model", model, "--targets", str(sft), "--out", str(root / "run"),
                 "--epochs", "1", "--lr", "1e-3", "--batch-size", "2", "--device", "cpu"]) == 0
    assert (root / "run" / "epoch-1" / "model.safetensors").is_file()  # an ordinary checkpoint
    capsys.readouterr()
    assert main(["eval", "--model", str(root / "run" / "epoch-1"), "--base-model", model,
                 "--suite", f"records:{records}", "--max-new-tokens", "4", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores["scores"]) == {f"records:{records}"} and "retention" in scores
    assert main(["analyze", "nll", "--model", model, "--targets", str(sft), "--json"]) == 0
    capsys.readouterr()
    assert main(["compare", "--model", model, "--corpus", str(records), "--methods", "sft",
                 "--epochs", "1", "--lr", "1e-3", "--max-new-tokens", "4",
                 "--fisher-examples", "0", "--no-report", "--out", str(root / "c")]) == 0
    results = json.loads((root / "c" / "results.json").read_text())
    assert [r["method"] for r in results["runs"]] == ["sft"]
