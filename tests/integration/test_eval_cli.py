import json

import pytest

from mixsd.cli import main
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tok = tiny_tokenizer()
    return save_tiny(tmp_path_factory.mktemp("m") / "tiny", tiny_llama(tok), tok)


@pytest.fixture
def files(tmp_path):
    records = tmp_path / "eval_records.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "prompt": "where is alice born ?", "answer": "paris", "answer_key": "paris",
         "paraphrases": ["alice born where ?"]},
        {"id": "b", "prompt": "what is 2 + 3 ?", "answer": "\\boxed{5}", "answer_key": "5"}]))
    mcq = tmp_path / "eval_mcq.jsonl"
    mcq.write_text("\n".join(json.dumps(r) for r in [
        {"question": "alice is born in", "choices": ["paris", "oslo"], "answer": 0},
        {"question": "bob lives in", "choices": ["rome", "lima", "tulsa"], "answer": "B"},
        {"question": "the color is", "choices": ["red", "blue"], "answer": "blue"}]))
    return records, mcq


def test_eval_json_scores_and_retention(model_dir, files, tmp_path, capsys):
    records, mcq = files
    suites = f"records:{records},paraphrase:{records},math:{records},mcq:{mcq}"
    code = main(["eval", "--model", model_dir, "--suite", suites, "--json", "--max-new-tokens",
                 "4", "--math-max-new-tokens", "4", "--base-model", model_dir,
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["scores"]) == set(suites.split(","))
    assert out["n"] == {f"records:{records}": 2, f"paraphrase:{records}": 1,
                        f"math:{records}": 2, f"mcq:{mcq}": 3}
    assert all(0.0 <= s <= 1.0 for s in out["scores"].values())
    assert out["base"] == out["scores"]          # the same model is its own base
    for name, kept in out["retention"].items():
        assert kept == (pytest.approx(100.0) if out["base"][name] > 0 else None)
    assert (tmp_path / "cache" / "base_scores.json").exists()
    assert (tmp_path / "out" / "scores.json").exists()
    assert len(list((tmp_path / "out" / "samples").glob("*.jsonl"))) == 4


def test_eval_table_and_user_errors(model_dir, files, capsys):
    _, mcq = files
    assert main(["eval", "--model", model_dir, "--suite", f"mcq:{mcq}"]) == 0
    text = capsys.readouterr().out
    assert f"mcq:{mcq}" in text and "score %" in text
    assert main(["eval", "--model", model_dir, "--suite", "bogus:x"]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert main(["eval", "--model", model_dir, "--suite", "mcq:/missing.jsonl"]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["eval", "--suite", "toy"]) == 2
    assert "--model" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["eval"], ["report"], ["analyze"], ["analyze", "nll"],
                                  ["analyze", "fisher"]])
def test_help_renders_with_an_example(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "mixsd" in capsys.readouterr().out


def test_eval_loads_a_lora_checkpoint_through_the_one_loader(model_dir, files, tmp_path, capsys):
    import torch

    from mixsd.models import load_model
    from mixsd.training import TrainConfig, train
    from mixsd.training.checkpoints import load_checkpoint_model

    targets = tmp_path / "targets.jsonl"
    targets.write_text("".join(json.dumps({
        "id": f"t{i}", "prompt": f"where is person{i} born ?", "answer": "paris",
        "answer_key": "paris", "target": "paris", "meta": {"verified": True}}) + "\n"
        for i in range(4)))
    run = train(TrainConfig(model=model_dir, targets=str(targets), out=str(tmp_path / "run"),
                            epochs=1, lr=5e-2, batch_size=2, lora=True, lora_r=2,
                            device="cpu", warmup_ratio=0.0, progress=False))
    ckpt = run.checkpoints[-1]
    ids = torch.tensor([[1, 5, 7, 9]])
    with torch.no_grad():
        adapter = load_model(str(ckpt))(input_ids=ids).logits
        merged = load_checkpoint_model(ckpt, merge=True)(input_ids=ids).logits
        base = load_model(model_dir)(input_ids=ids).logits
    assert torch.allclose(adapter, merged, atol=1e-5)
    assert not torch.allclose(adapter, base, atol=1e-4)  # the adapter was applied
    _, mcq = files
    capsys.readouterr()  # the trainer's log lines
    assert main(["eval", "--model", str(ckpt), "--suite", f"mcq:{mcq}", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["scores"]) == {f"mcq:{mcq}"}
    info = ckpt / "mixsd_checkpoint.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "pruned": True}))
    assert main(["eval", "--model", str(ckpt), "--suite", f"mcq:{mcq}"]) == 2
    assert "--keep" in capsys.readouterr().err


def test_an_eval_folder_refuses_another_evaluation_before_loading(model_dir, files, tmp_path,
                                                                  capsys):
    records, _ = files
    out = tmp_path / "out"
    args = ["eval", "--model", model_dir, "--suite", f"records:{records}", "--json",
            "--max-new-tokens", "4", "--out", str(out)]
    assert main(args) == 0
    assert main([*args, "--batch-size", "1"]) == 0  # the batch size decides no score
    info = json.loads((out / "run.json").read_text())
    assert info["stage"] == "eval" and info["status"] == "complete" and info["fingerprint"]
    capsys.readouterr()
    assert main([*args[:-2], "--max-new-tokens", "8", "--out", str(out)]) == 2
    assert "max_new_tokens" in capsys.readouterr().err
