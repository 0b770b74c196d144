import pytest

from mixsd.errors import ConfigError
from mixsd.prompts import GuidancePreset, PromptRenderer, get_guidance


def test_expert_prompt_is_x_prefix_answer_suffix(tiny_tok):
    r = PromptRenderer(tiny_tok, "knowledge")
    g = get_guidance("knowledge")
    assert r.naive_text("where was alice born ?") == "where was alice born ?"
    text = r.expert_text("where was alice born ?", "oslo")
    assert text == f"where was alice born ?\n\n{g.prefix}\noslo\n\n{g.suffix}"
    assert text.index(g.prefix) < text.index("oslo") < text.index(g.suffix)


def test_math_preset_matches_method_md():
    g = get_guidance("math")
    assert g.prefix.startswith("Here is a reference solution to this problem")
    assert g.suffix.endswith("put your final answer within \\boxed{}")


def test_custom_preset_and_unknown_name(tiny_tok):
    custom = GuidancePreset("c", prefix="ref :", suffix="again :", naive_format="q : {prompt}",
                            expert_format="q : {prompt} {prefix} {answer} {suffix} q : {prompt}")
    r = PromptRenderer(tiny_tok, custom)
    assert r.expert_text("x", "y") == "q : x ref : y again : q : x"
    assert r.naive_text("x") == "q : x"
    with pytest.raises(ConfigError, match="guidance must be one of"):
        get_guidance("nope")


def test_plain_text_ids_get_bos_and_targets_end_with_eos(tiny_tok):
    r = PromptRenderer(tiny_tok)
    ids = r.naive_ids("where was alice born ?")
    assert ids[0] == tiny_tok.bos_token_id
    assert r.stop_ids() == {tiny_tok.eos_token_id}
    prompt_ids, target_ids = r.training_example("where was alice born ?", "alice was born in oslo .")
    assert prompt_ids == ids and target_ids[-1] == tiny_tok.eos_token_id
    assert r.decode_target(target_ids) == "alice was born in oslo ."


def test_chat_template_wraps_the_user_turn(tiny_chat_tok):
    r = PromptRenderer(tiny_chat_tok, "knowledge")
    assert r.use_chat_template
    text = r.naive_text("where was alice born ?")
    assert text == "<s><|user|> where was alice born ? <|end|> <|assistant|>"
    ids = r.naive_ids("where was alice born ?")
    assert ids.count(tiny_chat_tok.bos_token_id) == 1  # the template's BOS only
    end = tiny_chat_tok.convert_tokens_to_ids("<|end|>")
    assert r.stop_ids() == {end, tiny_chat_tok.eos_token_id} and r.end_token_id == end
    assert r.target_ids("oslo")[-1] == end


def test_chat_template_can_be_turned_off_but_not_forced(tiny_tok, tiny_chat_tok):
    assert PromptRenderer(tiny_chat_tok, use_chat_template=False).naive_text("q") == "q"
    with pytest.raises(ConfigError, match="no chat template"):
        PromptRenderer(tiny_tok, use_chat_template=True)


def test_toy_presets_resolve_without_importing_toyworld_first():
    assert get_guidance("toy-own").naive_format == get_guidance("toy").naive_format


def test_stops_are_what_the_model_declares_not_names_in_the_vocabulary():
    """A ``</s>`` in the vocabulary of a model whose EOS and turn end are ``<|eot|>`` is not a
    stop; the generation config's EOS (an int or a list) is."""
    from mixsd.prompts import declared_eos_ids, turn_end_token_id
    from mixsd.testing import tiny_eot_chat_llama

    model, tok = tiny_eot_chat_llama()
    eot, stray = tok.convert_tokens_to_ids("<|eot|>"), tok.convert_tokens_to_ids("</s>")
    assert turn_end_token_id(tok) == eot != stray
    r = PromptRenderer(tok)
    assert r.stop_ids(model) == {eot} and r.end_token_id == eot
    model.generation_config.eos_token_id = [eot, 9]
    assert declared_eos_ids(model, tok) == {eot, 9} == r.stop_ids(model)
    model.generation_config.eos_token_id = 11
    assert r.stop_ids(model) == {eot, 11}
    assert PromptRenderer(tok, use_chat_template=False).stop_ids(None) == {eot}


def test_a_template_that_closes_turns_with_plain_text_adds_no_stop(tiny_tok):
    from mixsd.prompts import turn_end_token_id

    tiny_tok.chat_template = "{% for m in messages %}{{ m['content'] }} . {% endfor %}"
    assert turn_end_token_id(tiny_tok) is None
    tiny_tok.chat_template = "{{ raise_exception('no') }}"
    assert turn_end_token_id(tiny_tok) is None
