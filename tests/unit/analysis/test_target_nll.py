import json
import math

import pytest
import torch

from mixsd.analysis.nll import load_pairs, nll_of_files, plot_nll_histogram, target_nll
from mixsd.prompts import PromptRenderer

PAIRS = [("where is alice born ?", "alice is born in paris"), ("what is 2 + 3 ?", "5"),
         ("who lives in oslo ?", "bob lives in oslo")]


def _brute_mean_nll(model, tok, pairs):
    """Token by token: one forward pass per target token on the growing prefix."""
    renderer = PromptRenderer(tok)
    total, count = 0.0, 0
    for prompt, target in pairs:
        p_ids, t_ids = renderer.training_example(prompt, target)
        for t, tok_id in enumerate(t_ids):
            ids = torch.tensor([p_ids + t_ids[:t]])
            with torch.no_grad():
                logp = torch.log_softmax(model(ids).logits[0, -1], -1)
            total -= float(logp[tok_id])
            count += 1
    return total / count, count


@pytest.mark.parametrize("chat", [False, True])
def test_target_nll_matches_brute_force(chat, tiny_tok, tiny_chat_tok, tiny_model):
    tok = tiny_chat_tok if chat else tiny_tok
    expected, count = _brute_mean_nll(tiny_model, tok, PAIRS)
    got = target_nll(tiny_model, tok, PAIRS, batch_size=2)
    assert got.n_tokens == count
    assert got.mean_nll == pytest.approx(expected, rel=1e-5)
    assert got.n_targets == 3 and all(v > 0 for v in got.per_target)


def test_files_targets_and_records(tmp_path, tiny_tok, tiny_model):
    targets = tmp_path / "eval_targets.jsonl"
    rows = [{"id": "a", "prompt": p, "answer": "x", "answer_key": "x", "target": t,
             "meta": {"verified": i != 2}} for i, (p, t) in enumerate(PAIRS)]
    targets.write_text("\n".join(json.dumps(r) for r in rows) + "\n".replace("a", "a"))
    targets.write_text("\n".join(json.dumps(dict(r, id=f"t{i}")) for i, r in enumerate(rows)))
    records = tmp_path / "eval_records.jsonl"
    records.write_text("\n".join(json.dumps({"id": f"r{i}", "prompt": p, "answer": t,
                                             "answer_key": "k"}) for i, (p, t) in
                                 enumerate(PAIRS)))
    assert load_pairs(targets) == PAIRS[:2]            # the unverified target is left out
    assert load_pairs(targets, include_unverified=True) == PAIRS
    assert load_pairs(records) == PAIRS                # y* = the records' answers
    out = nll_of_files(tiny_model, tiny_tok, [targets, records])
    assert out[str(records)].mean_nll == pytest.approx(_brute_mean_nll(tiny_model, tiny_tok,
                                                                       PAIRS)[0], rel=1e-5)
    png = plot_nll_histogram(out, tmp_path / "nll.png")
    assert png.stat().st_size > 1000
    assert math.isfinite(out[str(targets)].mean_nll)


def test_cached_target_nlls_scores_each_file_once(tmp_path, tiny_tok, tiny_model):
    from mixsd.analysis.nll import NLLSettings, cached_target_nlls

    records = tmp_path / "facts.jsonl"
    records.write_text("\n".join(json.dumps({"id": f"r{i}", "prompt": p, "answer": t,
                                             "answer_key": "k"}) for i, (p, t) in
                                 enumerate(PAIRS)))
    cache = tmp_path / "analysis" / "nll.json"
    got = cached_target_nlls(cache, [records, records], tiny_model, tiny_tok,
                             NLLSettings(batch_size=2), {"model": "tiny"})
    assert got == {"facts": pytest.approx(target_nll(tiny_model, tiny_tok, PAIRS).mean_nll,
                                          rel=1e-6)}
    [(key, entry)] = json.loads(cache.read_text()).items()
    assert entry == {"name": "facts", "mean_nll": got["facts"]} and len(key) == 64

    class Refuses(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise AssertionError("a cached file was scored again")

    assert cached_target_nlls(cache, [records], Refuses(), tiny_tok,
                              model_fields={"model": "tiny"}) == got


def test_cached_target_nll_is_keyed_by_what_decides_it(tmp_path, tiny_tok, tiny_model):
    """The same name under another model, other targets or an old name-only file is scored
    again: a name alone never returns a value it did not earn."""
    from mixsd.analysis.nll import cached_target_nlls

    records = tmp_path / "facts.jsonl"
    rows = [json.dumps({"id": f"r{i}", "prompt": p, "answer": t, "answer_key": "k"})
            for i, (p, t) in enumerate(PAIRS)]
    records.write_text("\n".join(rows))
    cache = tmp_path / "nll.json"
    cache.write_text(json.dumps({"facts": 123.0}))  # a file from before the key
    first = cached_target_nlls(cache, [records], tiny_model, tiny_tok, model_fields={"model": "a"})
    assert first["facts"] != 123.0
    scored = []
    real = target_nll

    def counting(*args, **kwargs):
        scored.append(kwargs.get("name"))
        return real(*args, **kwargs)

    import mixsd.analysis.nll as nll_module

    nll_module.target_nll = counting
    try:
        cached_target_nlls(cache, [records], tiny_model, tiny_tok, model_fields={"model": "a"})
        assert scored == []
        cached_target_nlls(cache, [records], tiny_model, tiny_tok, model_fields={"model": "b"})
        assert scored == ["facts"]
        records.write_text("\n".join(rows[:1]))  # the targets changed under the same name
        again = cached_target_nlls(cache, [records], tiny_model, tiny_tok,
                                   model_fields={"model": "a"})
        assert scored == ["facts", "facts"] and again["facts"] != first["facts"]
    finally:
        nll_module.target_nll = real
    assert json.loads(cache.read_text())["facts"] == 123.0  # other keys are kept
