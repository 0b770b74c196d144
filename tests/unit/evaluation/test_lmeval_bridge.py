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


def test_lmeval_options_reach_lm_eval(monkeypatch, tiny_chat_tok):
    """apply_chat_template, the chat convention (template kwargs, system instruction),
    few-shot as multi-turn, gen_kwargs and the unsafe-code confirmation (off unless asked)."""
    pytest.importorskip("lm_eval")
    import lm_eval
    import lm_eval.models.huggingface as hf

    import mixsd.evaluation.lmeval as bridge

    seen = {}

    class FakeLM:
        def __init__(self, **kwargs):
            seen["lm"] = kwargs

    def fake_evaluate(**kwargs):
        seen["evaluate"] = kwargs
        return {"results": {"t": {"acc,none": 1.0}}, "n-samples": {"t": {"effective": 1}},
                "samples": {"t": [{"doc_id": 0, "arguments": [["ctx", " a"]], "target": 0,
                                   "filtered_resps": [(-1.0, True)], "metrics": ["acc"],
                                   "acc": 1.0}]}}

    class FakeManager:
        all_tasks = ["t"]

    monkeypatch.setattr(hf, "HFLM", FakeLM)
    monkeypatch.setattr(lm_eval, "simple_evaluate", fake_evaluate)
    monkeypatch.setattr(bridge, "_task_manager", lambda include: FakeManager())
    plain = get_suites("lmeval:t")["lmeval:t"]
    result = plain.evaluate(None, tiny_chat_tok)
    assert seen["evaluate"]["apply_chat_template"] is False
    assert seen["evaluate"]["confirm_run_unsafe_code"] is False
    assert seen["evaluate"]["log_samples"] is True and seen["evaluate"]["gen_kwargs"] is None
    assert seen["lm"]["chat_template_args"] is None
    assert result.samples == [{"id": "0", "prompt": "ctx", "target": 0,
                               "response": [[-1.0, True]], "correct": True,
                               "metrics": {"acc": 1.0}}]
    chat = get_suites("lmeval:t", lmeval_chat_template=True, lmeval_unsafe_code=True,
                      lmeval_gen_kwargs={"max_gen_toks": 8}, lmeval_fewshot_as_multiturn=False,
                      chat={"system_prompt": "be brief",
                            "chat_template_kwargs": {"enable_thinking": True}})["lmeval:t"]
    chat.evaluate(None, tiny_chat_tok)
    assert seen["evaluate"]["apply_chat_template"] is True
    assert seen["evaluate"]["system_instruction"] == "be brief"
    assert seen["evaluate"]["fewshot_as_multiturn"] is False
    assert seen["evaluate"]["gen_kwargs"] == {"max_gen_toks": 8}
    assert seen["evaluate"]["confirm_run_unsafe_code"] is True
    assert seen["lm"]["chat_template_args"] == {"enable_thinking": True}
    # lm-eval's defaults keep the fingerprint of a suite made before these options
    assert plain.fingerprint() == bridge.LMEvalSuite("lmeval:t", "t").fingerprint()
    assert chat.fingerprint() != plain.fingerprint()
    with pytest.raises(MixsdError, match="no chat template"):
        from mixsd.testing import tiny_tokenizer

        chat.evaluate(None, tiny_tokenizer())


def test_lmeval_chat_template_samples_and_builtin_tasks(tmp_path):
    """On a tiny Qwen3 with the real template: the include folder adds to the built-in
    tasks, the chat template renders the context with thinking off, samples are logged."""
    pytest.importorskip("lm_eval")
    pytest.importorskip("trl")
    from mixsd.evaluation.lmeval import _task_manager
    from mixsd.evaluation.samples import read_sample_log, write_sample_logs
    from mixsd.testing import tiny_qwen3, trl_chat_template

    model, tok = tiny_qwen3(trl_chat_template("qwen3"))
    data = tmp_path / "eval_local.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "eval_local_mc.yaml").write_text(TASK.format(data=data))
    assert {"eval_local_mc", "arc_easy"} <= set(_task_manager(str(tasks)).all_tasks)
    suite = get_suites("lmeval:eval_local_mc", lmeval_include=str(tasks),
                       lmeval_chat_template=True)["lmeval:eval_local_mc"]
    result = suite.evaluate(model, tok, batch_size=4)
    assert result.n == 3 and len(result.samples) == 3
    first = result.samples[0]
    assert first["prompt"].startswith("<|im_start|>user\nalice is born in")
    assert first["prompt"].endswith("<think>\n\n</think>\n\n")
    assert first["correct"] in (True, False) and "acc" in first["metrics"]
    write_sample_logs(tmp_path / "samples", {suite.name: result})
    assert len(read_sample_log(tmp_path / "samples", suite.name)) == 3
