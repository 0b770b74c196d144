import json

import pytest
import torch

from mixsd.errors import RecordError
from mixsd.evaluation.loglik import continuation_logprobs
from mixsd.evaluation.mcq import MCQSuite, read_mcq
from mixsd.prompts import PromptRenderer


def _brute_logprobs(model, ctx, cont):
    """One forward pass per continuation token, on the growing prefix."""
    out = []
    for t, tok in enumerate(cont):
        ids = torch.tensor([list(ctx) + list(cont[:t])])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, -1].float(), -1)
        out.append(float(logp[tok]))
    return out


def test_continuation_logprobs_match_token_by_token_loop(tiny_tok, tiny_model):
    pairs = [([2, 10, 11], [12, 13, 14]), ([2], [20]), ([2, 30, 31, 32, 33], [40, 41])]
    got = continuation_logprobs(tiny_model, pairs, batch_size=2)
    for (ctx, cont), lp in zip(pairs, got):
        assert lp == pytest.approx(_brute_logprobs(tiny_model, ctx, cont), abs=1e-5)


def test_read_mcq_answer_forms_and_errors(write_jsonl):
    path = write_jsonl([{"question": "q1", "choices": ["paris", "oslo"], "answer": 1},
                        {"question": "q2", "choices": ["paris", "oslo", "rome"], "answer": "C"},
                        {"question": "q3", "choices": ["red", "blue"], "answer": "blue"}])
    assert [i.answer for i in read_mcq(path)] == [1, 2, 1]
    bad = write_jsonl([{"question": "q", "choices": ["a", "b"], "answer": 5}], name="bad.jsonl")
    with pytest.raises(RecordError, match=r"bad.jsonl:1.*'answer'"):
        read_mcq(bad)
    bad = write_jsonl([{"question": "q", "choices": ["a"], "answer": 0}], name="bad2.jsonl")
    with pytest.raises(RecordError, match="'choices'"):
        read_mcq(bad)


def test_mcq_picks_the_most_likely_choice(tmp_path, tiny_tok, tiny_model):
    rows = [{"id": "x", "question": "alice is born in", "choices": ["paris", "oslo", "lima"],
             "answer": 0},
            {"id": "y", "question": "bob lives in", "choices": ["rome", "tulsa"], "answer": 1}]
    path = tmp_path / "eval_mcq.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    suite = MCQSuite("mcq", read_mcq(path))
    result = suite.evaluate(tiny_model, tiny_tok, batch_size=3)
    renderer = PromptRenderer(tiny_tok)
    expected_correct = 0
    for row, sample in zip(rows, result.samples):
        ctx = renderer.naive_ids(row["question"])
        sums = [sum(_brute_logprobs(tiny_model, ctx, tiny_tok(" " + c, add_special_tokens=False)
                                    ["input_ids"])) for c in row["choices"]]
        assert sample["logprobs"] == pytest.approx(sums, abs=1e-4)
        pick = max(range(len(sums)), key=sums.__getitem__)
        assert sample["generation"] == row["choices"][pick]
        expected_correct += pick == row["answer"]
    assert result.score == expected_correct / 2
    assert result.n == 2
