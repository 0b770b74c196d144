"""Targets exported for other trainers (issue 23, item 4): TRL's prompt/completion (plain or
conversational) and chat messages; verified targets only; an exported file trains in TRL."""

from __future__ import annotations

import json

import pytest

from mixsd.cli import main
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord, TargetRecord
from mixsd.targets.export import export_rows

QUESTIONS = [("where was alice born ?", "alice was born in paris", "paris"),
             ("who works in oslo ?", "bob works in oslo", "bob"),
             ("which city is red ?", "rome", "rome")]


def _targets(verified=(True, True, False)):
    return [TargetRecord(KnowledgeRecord(f"r{i}", q, a, k), a, {"verified": v})
            for i, ((q, a, k), v) in enumerate(zip(QUESTIONS, verified))]


@pytest.fixture(scope="module")
def qwen3():
    from mixsd.testing import tiny_qwen3, trl_chat_template

    pytest.importorskip("trl")
    return tiny_qwen3(trl_chat_template("qwen3"))


def test_plain_model_exports_text_prompt_and_completion(tiny_tok):
    rows = export_rows(_targets(), PromptRenderer(tiny_tok), "trl")
    assert rows == [{"prompt": "where was alice born ?", "completion": "alice was born in paris"},
                    {"prompt": "who works in oslo ?", "completion": "bob works in oslo"}]
    messages = export_rows(_targets(), PromptRenderer(tiny_tok), "messages")
    assert messages[0] == {"messages": [
        {"role": "user", "content": "where was alice born ?"},
        {"role": "assistant", "content": "alice was born in paris"}]}
    with pytest.raises(Exception, match="export must be one of"):
        export_rows(_targets(), PromptRenderer(tiny_tok), "axolotl")


def test_qwen3_export_is_conversational_with_thinking_off(qwen3):
    _, tok = qwen3
    renderer = PromptRenderer(tok, system_prompt="you are brief")
    rows = export_rows(_targets(), renderer, "trl")
    assert len(rows) == 2  # verified only
    assert rows[0] == {
        "prompt": [{"role": "system", "content": "you are brief"},
                   {"role": "user", "content": "where was alice born ?"}],
        "completion": [{"role": "assistant", "content": "alice was born in paris"}],
        "chat_template_kwargs": {"enable_thinking": False}}
    # the template renders the export into exactly the ids mixsd trains on
    row = rows[0]
    ids = tok.apply_chat_template(row["prompt"] + row["completion"], tokenize=True,
                                  return_dict=True, **row["chat_template_kwargs"])["input_ids"]
    prompt_ids, target_ids = renderer.training_example(QUESTIONS[0][0], QUESTIONS[0][1])
    assert list(ids) == prompt_ids + target_ids
    msgs = export_rows(_targets(), renderer, "messages")[1]
    assert [m["role"] for m in msgs["messages"]] == ["system", "user", "assistant"]
    assert msgs["chat_template_kwargs"] == {"enable_thinking": False}


def test_cli_exports_a_complete_folder(tmp_path, qwen3, write_jsonl):
    from mixsd.testing import save_tiny

    model, tok = qwen3
    path = save_tiny(tmp_path / "q3", model, tok)
    data = write_jsonl([{"id": f"r{i}", "prompt": q, "answer": a, "answer_key": k}
                        for i, (q, a, k) in enumerate(QUESTIONS)])
    out = tmp_path / "targets"
    main(["targets", "--model", path, "--data", str(data), "--out", str(out), "--method", "sft",
          "--no-progress"])
    assert not (out / "export").exists()
    # a folder completed before is exported on the next call, without rebuilding it
    main(["targets", "--model", path, "--data", str(data), "--out", str(out), "--method", "sft",
          "--no-progress", "--export", "trl,messages"])
    rows = [json.loads(line) for line in (out / "export" / "trl.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and rows[0]["chat_template_kwargs"] == {"enable_thinking": False}
    assert (out / "export" / "messages.jsonl").is_file()


@pytest.mark.parametrize("fmt", ["trl", "messages"])
def test_trl_sft_trainer_trains_a_step_on_an_export(tmp_path, qwen3, fmt):
    """TRL's SFTTrainer reads the exported file as it is and takes one optimiser step."""
    pytest.importorskip("trl")
    import torch
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from mixsd.testing import tiny_qwen3, trl_chat_template

    _, tok = qwen3
    model, _ = tiny_qwen3(trl_chat_template("qwen3"), seed=1)
    rows = export_rows(_targets(), PromptRenderer(tok), fmt)
    path = tmp_path / f"{fmt}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset = load_dataset("json", data_files=str(path), split="train")
    before = [p.detach().clone() for p in model.parameters()]
    args = SFTConfig(output_dir=str(tmp_path / "trl"), max_steps=1, per_device_train_batch_size=2,
                     learning_rate=1e-2, report_to=[], save_strategy="no", use_cpu=True,
                     logging_steps=1, dataloader_num_workers=0, bf16=False)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok)
    trainer.train()
    assert trainer.state.global_step == 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # the loss is on the completion only (prompt-completion) or the whole conversation
    first = trainer.train_dataset[0]
    assert first["input_ids"][-1] == tok.convert_tokens_to_ids("<|im_end|>")
