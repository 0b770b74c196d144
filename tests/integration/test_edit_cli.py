"""`mixsd edit` and the memit method of `mixsd compare`, end to end on a tiny model."""

import json

import pytest

from mixsd.cli import main
from mixsd.evaluation.results import read_results
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer

FACTS = [("where was alice born ?", "alice", "oslo"), ("where was bob born ?", "bob", "lima"),
         ("where was carol born ?", "carol", "rome")]
SMALL = ["--cov-source", "generations", "--cov-texts", "6", "--cov-max-tokens", "8",
         "--v-steps", "3", "--guidance", "knowledge", "--device", "cpu"]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_HOME", str(tmp_path / "home"))
    tok = tiny_tokenizer()
    model_dir = save_tiny(tmp_path / "model", tiny_llama(tok, hidden=32), tok)
    data = tmp_path / "facts.jsonl"
    data.write_text("".join(json.dumps({
        "id": f"f{i}", "prompt": q, "answer": f"the answer is {a} .", "answer_key": a,
        "subject": s, "paraphrases": [q.replace("where was", "what city was")]}) + "\n"
        for i, (q, s, a) in enumerate(FACTS)))
    return model_dir, data


def test_edit_writes_the_edited_model(setup, tmp_path, capsys):
    model_dir, data = setup
    out = tmp_path / "edited"
    assert main(["edit", "--model", model_dir, "--data", str(data), "--out", str(out),
                 *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "edited 3 facts into layers 0" in printed
    assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    stats = json.loads((out / "edit.json").read_text())
    assert [f["id"] for f in stats["facts"]] == ["f0", "f1", "f2"]
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert list((tmp_path / "home" / "memit-cov").glob("*-L0-generations-*.pt"))


def test_edit_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["edit", "--help"])
    assert "mixsd edit --model toy --data" in capsys.readouterr().out


def test_a_record_without_subject_is_a_clear_error(setup, tmp_path, capsys):
    model_dir, data = setup
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    del rows[1]["subject"]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = main(["edit", "--model", model_dir, "--data", str(data), "--out",
                 str(tmp_path / "e"), *SMALL])
    assert code == 2
    assert "record 'f1' has no subject" in capsys.readouterr().err
    code = main(["compare", "--model", model_dir, "--corpus", str(data), "--methods", "memit",
                 "--out", str(tmp_path / "c"), "--device", "cpu"])
    assert code == 2
    assert "record 'f1' has no subject" in capsys.readouterr().err


def test_compare_runs_memit_beside_sft(setup, tmp_path, capsys):
    model_dir, data = setup
    edit_yaml = tmp_path / "edit.yaml"
    edit_yaml.write_text("cov_source: generations\ncov_texts: 6\ncov_max_tokens: 8\n"
                         "v_steps: 3\n")
    out = tmp_path / "cmp"
    argv = ["compare", "--model", model_dir, "--corpus", str(data), "--methods", "sft,memit",
            "--epochs", "2", "--lr", "1e-2,1e-3", "--out", str(out), "--suites",
            f"records:{data}", "--max-new-tokens", "4", "--batch-size", "2",
            "--fisher-examples", "2", "--device", "cpu", "--max-retries", "0",
            "--include-unverified", "--edit-config", str(edit_yaml)]
    assert main(argv) == 0
    assert "memit seed=0" in capsys.readouterr().out
    results = read_results(out / "results.json")
    memit = [r for r in results["runs"] if r["method"] == "memit"]
    assert len(memit) == 1 and len(results["runs"]) == 3  # one edit, whatever the lrs
    run = memit[0]
    assert run["lr"] is None and run["selected_epoch"] == 1 and len(run["epochs"]) == 1
    assert run["fisher"]["total"] >= 0 and run["memorization"] is not None
    assert run["edit"]["layers"] == [0] and run["drift_kl"] is not None
    assert (out / "runs" / "memit-s0" / "epoch-1" / "config.json").exists()
    assert "memit" in (out / "report" / "report.md").read_text()
    before = (out / "results.json").read_text()
    assert main(argv) == 0  # reuses the entry
    assert json.loads((out / "results.json").read_text())["runs"] == json.loads(before)["runs"]


def test_a_second_edit_into_the_same_out_resumes_the_same_and_refuses_another(setup, tmp_path,
                                                                              capsys):
    model_dir, data = setup
    out = tmp_path / "edited"
    args = ["edit", "--model", model_dir, "--data", str(data), "--out", str(out), *SMALL]
    assert main(args) == 0
    info = json.loads((out / "run.json").read_text())
    assert info["stage"] == "edit" and len(info["fingerprint"]) == 64
    assert main(args) == 0  # the same edit of the same facts writes the folder again
    capsys.readouterr()
    assert main([*args, "--v-steps", "4"]) == 2  # another edit: refused, naming the field
    assert "v_steps" in capsys.readouterr().err
    data.write_text(data.read_text().replace("oslo", "bergen"))
    assert main(args) == 2  # other facts under the same file name: refused too
    assert "data_sha256" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["fingerprint"] == info["fingerprint"]
