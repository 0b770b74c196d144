"""The lm-eval bridge on a local task definition (no hub access). Takes ~10-15 s."""

import json

import pytest

from mixsd.errors import MixsdError
from mixsd.evaluation.lmeval import pick_metric
from mixsd.evaluation.loglik import continuation_logprobs
from mixsd.evaluation.suites import get_suites

TASK = """task: eval_local_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

ROWS = [{"question": "alice is born in", "choices": ["paris", "oslo"], "label": 0},
        {"question": "bob lives in", "choices": ["rome", "lima", "tulsa"], "label": 1},
        {"question": "carol works in", "choices": ["oslo", "paris"], "label": 1}]


def test_pick_metric():
    assert pick_metric({"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": "t"}) == ("acc,none", 0.5)
    assert pick_metric({"f1,none": 0.2, "exact_match,x": 0.7}) == ("exact_match,x", 0.7)
    with pytest.raises(MixsdError, match="no metric 'bleu'"):
        pick_metric({"acc,none": 0.5}, "bleu")


def test_lmeval_task_runs_on_the_in_memory_model(tmp_path, tiny_tok, tiny_model):
    pytest.importorskip("lm_eval")
    data = tmp_path / "eval_local.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "eval_local_mc.yaml").write_text(TASK.format(data=data))
    suite = get_suites("lmeval:eval_local_mc", lmeval_include=str(tasks))["lmeval:eval_local_mc"]
    result = suite.evaluate(tiny_model, tiny_tok, batch_size=4)
    # lm-eval's acc: argmax of summed log-likelihood of " " + choice after the question.
    correct = 0
    for row in ROWS:
        ctx = tiny_tok(row["question"])["input_ids"]
        conts = [tiny_tok(" " + c, add_special_tokens=False)["input_ids"] for c in row["choices"]]
        sums = [sum(lp) for lp in continuation_logprobs(tiny_model, [(ctx, c) for c in conts])]
        correct += max(range(len(sums)), key=sums.__getitem__) == row["label"]
    assert result.score == pytest.approx(correct / len(ROWS))
    assert result.n == 3
    assert "acc,none" in result.metrics
    with pytest.raises(MixsdError, match="unknown lm-eval task"):
        get_suites("lmeval:nope", lmeval_include=str(tasks))["lmeval:nope"].evaluate(
            tiny_model, tiny_tok)
