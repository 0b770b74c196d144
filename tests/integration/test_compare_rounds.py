"""`mixsd compare --rounds N` (continual injection) and a multi-seed grid on a tiny model."""

import json

import yaml

from mixsd.cli import main
from mixsd.evaluation.results import read_results
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

FACTS = [("where was alice born ?", "oslo"), ("where was bob born ?", "lima"),
         ("where was carol born ?", "rome"), ("where was dave born ?", "paris"),
         ("where was erin born ?", "oslo"), ("where was finn born ?", "lima")]


def _setup(tmp_path):
    tok = tiny_tokenizer()
    model_dir = save_tiny(tmp_path / "model", tiny_llama(tok, hidden=32), tok)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({
        "id": f"f{i}", "prompt": q, "answer": f"the answer is {a} .", "answer_key": a}) + "\n"
        for i, (q, a) in enumerate(FACTS)))
    held = tmp_path / "held.jsonl"
    held.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"{w} is the city of",
                                        "answer": "red", "answer_key": "red"}) + "\n"
                            for i, w in enumerate(["alice", "bob"])))
    return model_dir, data, held


def _argv(model_dir, data, held, out, *extra):
    return ["compare", "--model", model_dir, "--corpus", str(data), "--epochs", "2",
            "--lr", "1e-2", "--out", str(out), "--suites", f"records:{held}",
            "--max-new-tokens", "4", "--batch-size", "2", "--fisher-examples", "0",
            "--device", "cpu", "--max-retries", "0", "--include-unverified", *extra]


def test_rounds_train_one_after_another_and_measure_earlier_rounds(tmp_path, capsys):
    model_dir, data, held = _setup(tmp_path)
    out = tmp_path / "rounds"
    argv = _argv(model_dir, data, held, out, "--methods", "sft,mixsd:0.5", "--seeds", "0",
                 "--rounds", "3")
    assert main(argv) == 0
    results = read_results(out / "results.json")
    rounds = results["rounds"]
    assert rounds["n"] == 3 and rounds["facts"] == [2, 2, 2]
    assert [(e["group"], e["round"]) for e in rounds["entries"]] == [
        ("sft lr=0.01", 1), ("sft lr=0.01", 2), ("sft lr=0.01", 3),
        ("mixsd:0.5 lr=0.01", 1), ("mixsd:0.5 lr=0.01", 2), ("mixsd:0.5 lr=0.01", 3)]
    third = rounds["entries"][2]
    assert list(third["memorization"]) == ["1", "2", "3"]  # every round's facts so far
    assert all(0.0 <= v <= 1.0 for v in third["memorization"].values())
    # round 2 starts from round 1's selected checkpoint, and trains on round 2's facts only
    run_dir = out / "rounds" / "runs" / "sft-lr0.01-s0"
    first = next(r for r in results["runs"] if r["name"] == "sft lr=0.01 round=1 seed=0")
    cfg = yaml.safe_load((run_dir / "round-2" / "config.yaml").read_text())
    assert cfg["model"] == str(run_dir / "round-1" / f"epoch-{first['selected_epoch']}")
    round2 = [json.loads(line)["id"] for line in
              (out / "rounds" / "targets" / "sft-round-2" / "targets.jsonl").read_text()
              .splitlines()]
    assert round2 == ["f2", "f3"]
    assert (out / "report" / "rounds.png").stat().st_size > 1000
    assert "Continual injection" in (out / "report" / "report.md").read_text()
    assert "after round" in capsys.readouterr().out or True  # one seed: per-run table
    # re-running resumes everything
    before = (out / "results.json").read_text()
    assert main(argv) == 0
    assert json.loads((out / "results.json").read_text())["rounds"] == json.loads(before)["rounds"]


def test_seeds_give_each_run_its_own_targets_and_the_console_one_bar(tmp_path, capsys):
    model_dir, data, held = _setup(tmp_path)
    out = tmp_path / "seeds"
    assert main(_argv(model_dir, data, held, out, "--methods", "sft,mixsd:0.5",
                      "--seeds", "0,1", "--method-lr", "sft=3e-2",
                      "--equal-memorization", "0.9")) == 0
    captured = capsys.readouterr()
    assert "Methods over seeds" in captured.out and "±" in captured.out
    assert "sft lr=0.03" in captured.out and "mixsd:0.5 lr=0.01" in captured.out
    assert "loss" not in captured.out + captured.err  # the Trainer's dicts went to the log
    assert "'loss'" in (out / "log.txt").read_text()
    files = sorted(p.name for p in (out / "targets").iterdir())
    assert files == ["mixsd-0.5-s0", "mixsd-0.5-s1", "sft"]
    seeds = {json.loads(line)["meta"]["seed"] for f in ("mixsd-0.5-s0", "mixsd-0.5-s1")
             for line in (out / "targets" / f / "targets.jsonl").read_text().splitlines()}
    assert seeds == {0, 1}
    results = read_results(out / "results.json")
    assert results["targets"]["mixsd-0.5"]["files"] == 2
    assert results["equal_memorization"]["level"] == 0.9
