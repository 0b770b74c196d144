import copy
import json

import pytest
import torch

from mixsd.cli import main
from mixsd.testing import save_tiny, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("an")
    tok = tiny_tokenizer()
    base = tiny_llama(tok)
    save_tiny(root / "base", base, tok)
    moved = copy.deepcopy(base)
    with torch.no_grad():
        moved.model.layers[1].mlp.up_proj.weight.add_(0.05)
    save_tiny(root / "run" / "epoch-1", moved, tok)
    save_tiny(root / "run" / "epoch-2", base, tok)
    records = root / "eval_records.jsonl"
    records.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "prompt": "where is alice born ?", "answer": "alice is born in paris",
         "answer_key": "paris"},
        {"id": "b", "prompt": "what is 2 + 3 ?", "answer": "it is 5", "answer_key": "5"}]))
    targets = root / "eval_targets.jsonl"
    targets.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "prompt": "where is alice born ?", "answer": "x", "answer_key": "paris",
         "target": "paris", "meta": {"verified": True}}]))
    return root, records, targets


def test_analyze_nll_json_and_histogram(setup, capsys):
    root, records, targets = setup
    code = main(["analyze", "nll", "--model", str(root / "base"), "--targets", str(records),
                 str(targets), "--json", "--out", str(root / "nll")])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {str(records), str(targets)}
    assert all(v > 0 for v in out.values())
    assert (root / "nll" / "nll_hist.png").stat().st_size > 1000
    saved = json.loads((root / "nll" / "nll.json").read_text())
    assert saved["nll"] == out


def test_analyze_fisher_per_checkpoint(setup, capsys):
    root, records, _ = setup
    code = main(["analyze", "fisher", "--model", str(root / "base"), "--checkpoints",
                 str(root / "run"), "--suite", f"records:{records}", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    moved, same = out[str(root / "run" / "epoch-1")], out[str(root / "run" / "epoch-2")]
    assert same["total"] == 0.0
    assert moved["total"] > 0
    assert moved["per_layer"]["layer.1"] == pytest.approx(moved["total"])
    assert main(["analyze", "fisher", "--model", str(root / "base"), "--checkpoints",
                 str(root / "nope"), "--suite", f"records:{records}"]) == 2
    assert "neither a checkpoint" in capsys.readouterr().err
