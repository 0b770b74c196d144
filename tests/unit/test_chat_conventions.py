"""Chat conventions (issue 23, item 1): chat-template keyword arguments and a system prompt,
per-family defaults (Qwen3: thinking off unless asked), used alike by every stage.

The Qwen3 tests run a tiny random Qwen3-architecture model carrying the REAL Qwen3 chat
template, read from the copy TRL ships inside its package (no hub)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixsd.errors import ConfigError
from mixsd.prompts import PromptRenderer, chat_convention, chat_family
from mixsd.records import KnowledgeRecord
from mixsd.registry import ChatFamily

QUESTION = "where was alice born ?"
THINK_OFF = "<|im_start|>assistant\n<think>\n\n</think>\n\n"


@pytest.fixture(scope="module")
def qwen3():
    from mixsd.testing import tiny_qwen3, trl_chat_template

    pytest.importorskip("trl")
    return tiny_qwen3(trl_chat_template("qwen3"))


def test_qwen3_template_is_the_real_one(qwen3):
    _, tok = qwen3
    assert "enable_thinking" in tok.chat_template and "<|im_start|>" in tok.chat_template
    assert chat_family(tok)[0] == "qwen3"


def test_qwen3_thinks_only_when_asked(qwen3):
    _, tok = qwen3
    off = PromptRenderer(tok, "knowledge")
    assert off.chat.template_kwargs == {"enable_thinking": False}
    assert off.naive_text(QUESTION).endswith(THINK_OFF)
    assert off.naive_text(QUESTION).startswith("<|im_start|>user\n" + QUESTION)
    on = PromptRenderer(tok, "knowledge", chat_template_kwargs={"enable_thinking": True})
    assert on.naive_text(QUESTION).endswith("<|im_start|>assistant\n")
    assert "<think>" not in on.naive_text(QUESTION)
    # the expert prompt follows the same convention
    assert off.expert_text(QUESTION, "oslo").endswith(THINK_OFF)


def test_system_prompt_opens_the_conversation(qwen3):
    _, tok = qwen3
    r = PromptRenderer(tok, "knowledge", system_prompt="you are brief")
    assert r.naive_text(QUESTION).startswith("<|im_start|>system\nyou are brief<|im_end|>\n")
    assert r.naive_messages(QUESTION) == [{"role": "system", "content": "you are brief"},
                                          {"role": "user", "content": QUESTION}]
    assert PromptRenderer(tok).naive_messages(QUESTION) == [{"role": "user",
                                                               "content": QUESTION}]


def test_turn_end_and_stops_of_qwen3(qwen3):
    model, tok = qwen3
    r = PromptRenderer(tok)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert r.end_token_id == im_end and r.target_ids("oslo")[-1] == im_end
    assert r.stop_ids(model) == {im_end, tok.pad_token_id}


def test_chat_settings_need_a_template(tiny_tok):
    with pytest.raises(ConfigError, match="need a chat template"):
        PromptRenderer(tiny_tok, system_prompt="be brief")
    with pytest.raises(ConfigError, match="need a chat template"):
        PromptRenderer(tiny_tok, chat_template_kwargs={"enable_thinking": True})
    assert PromptRenderer(tiny_tok, system_prompt="").naive_text("q") == "q"


def test_a_plugin_registers_a_family(registries, tiny_chat_tok):
    registries.chat_families.register("tiny", ChatFamily(marker="<|assistant|>",
                                                         system_prompt="be brief"))
    conv = chat_convention(tiny_chat_tok)
    assert conv.system_prompt == "be brief"
    assert chat_convention(tiny_chat_tok, system_prompt="").system_prompt is None


def test_config_fields_parse_and_keep_old_fingerprints():
    from mixsd.compare.config import CompareConfig
    from mixsd.compare.plan import RunPlan, targets_config, train_config
    from mixsd.config import _mapping
    from mixsd.targets.config import TargetsConfig
    from mixsd.training.config import TrainConfig

    assert _mapping("enable_thinking=true,n=3,x=text") == {"enable_thinking": True, "n": 3,
                                                           "x": "text"}
    cfg = TargetsConfig(chat_template_kwargs="enable_thinking=false", system_prompt="s")
    assert cfg.chat_template_kwargs == {"enable_thinking": False}
    assert cfg.chat_options() == {"chat_template_kwargs": {"enable_thinking": False},
                                  "system_prompt": "s"}
    # at their defaults the new fields leave every fingerprint as it was
    for stage in (TargetsConfig(), TrainConfig(), CompareConfig(model="toy", corpus="toy")):
        decisive = stage.decisive_dict()
        assert "chat_template_kwargs" not in decisive and "system_prompt" not in decisive
        assert stage.chat_options() == {}
    with pytest.raises(ConfigError, match="chat_template_kwargs"):
        TargetsConfig(chat_template_kwargs="no-equals-sign")
    # a comparison passes them on to every stage
    cmp = CompareConfig.from_dict({"model": "toy", "corpus": "toy",
                                   "train.chat_template_kwargs": {"enable_thinking": True},
                                   "system_prompt": "s"})
    spec = cmp.method_specs()[0]
    for stage in (targets_config(cmp, spec, 0),
                  train_config(cmp, RunPlan(spec, 1e-5, 0, "r", Path("r"), Path("d"),
                                            targets=Path("t")))):
        assert stage.chat_options() == {"chat_template_kwargs": {"enable_thinking": True},
                                        "system_prompt": "s"}


def test_cli_flags_of_chat_settings():
    import argparse

    from mixsd.targets.config import TargetsConfig

    parser = argparse.ArgumentParser()
    TargetsConfig.add_arguments(parser)
    args = parser.parse_args(["--chat-template-kwargs", "enable_thinking=true",
                              "--system-prompt", "be brief"])
    cfg = TargetsConfig.from_args(args)
    assert cfg.chat_template_kwargs == {"enable_thinking": True}
    assert cfg.system_prompt == "be brief"


def test_every_stage_renders_the_same_prompt(qwen3):
    """Targets, NLL training, OPSD and evaluation condition on the same naive ids."""
    from mixsd.evaluation.suites import memorization_suites
    from mixsd.targets import TargetsConfig
    from mixsd.targets.build import TargetBuilder
    from mixsd.training.data import nll_examples, opsd_examples

    model, tok = qwen3
    chat = {"system_prompt": "you are brief"}
    builder = TargetBuilder(model, tok, TargetsConfig(max_new_tokens=4, **chat))
    rec = KnowledgeRecord("r0", QUESTION, "alice was born in oslo", "oslo")
    expected = builder.renderer.naive_ids(QUESTION)
    assert tok.convert_ids_to_tokens(expected[:2]) == ["<|im_start|>", "system"]
    target = builder.sft_target(rec)
    renderer = PromptRenderer(tok, "knowledge", **chat)
    nll, _ = nll_examples([target], renderer)
    opsd, _ = opsd_examples([rec], renderer)
    assert nll[0]["input_ids"][:len(expected)] == expected
    assert opsd[0]["naive_ids"] == expected
    suite = memorization_suites([rec], chat=chat)["memorization"]
    assert PromptRenderer(tok, suite.guidance, **suite.chat).naive_ids(QUESTION) == expected
    assert suite.evaluate(model, tok, batch_size=1).n == 1


def test_lambda_one_at_t0_equals_generate_on_qwen3(qwen3):
    """λ = 1 at T = 0 is greedy generation from the naive prompt (thinking off)."""
    import torch

    from mixsd.targets import TargetsConfig
    from mixsd.targets.build import mix_settings
    from mixsd.targets.engine import MixJob, mix_generate

    model, tok = qwen3
    renderer = PromptRenderer(tok, "knowledge")
    settings = mix_settings(model, tok, renderer, TargetsConfig(mix_lambda=1.0,
                                                                max_new_tokens=12))
    questions = [QUESTION, "what is 2 + 3 ?", "who"]
    jobs = [MixJob(f"q{i}", 1, renderer.naive_ids(q), renderer.expert_ids(q, "oslo"))
            for i, q in enumerate(questions)]
    for job, out in zip(jobs, mix_generate(model, jobs, settings), strict=True):
        assert job.naive_ids[-2:] == tok.convert_tokens_to_ids(["<think>", "</think>"])
        ids = torch.tensor([job.naive_ids])
        full = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                              max_new_tokens=12, do_sample=False,
                              pad_token_id=tok.pad_token_id)[0, len(job.naive_ids):].tolist()
        stops = settings.stop_token_ids
        cut = next((i for i, t in enumerate(full) if t in stops), None)
        assert out.token_ids == (full if cut is None else full[:cut])
