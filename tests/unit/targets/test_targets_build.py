"""TargetBuilder: verification with retries, meta, SFT targets, prompt_too_long, stop tokens."""

from __future__ import annotations

import pytest

from mixsd.answers import is_correct
from mixsd.errors import ConfigError
from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord
from mixsd.targets import TargetsConfig, build_targets
from mixsd.targets.build import mix_settings, stop_token_ids
from mixsd.targets.engine import MixJob, mix_generate
from mixsd.testing import tiny_llama, tiny_tokenizer

META_KEYS = {
    "method",
    "lambda",
    "temperature",
    "top_k",
    "seed",
    "attempts",
    "verified",
    "finish_reason",
    "num_tokens",
    "naive_token_fraction",
    "sources",
}


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(tok)


def _records(n=8, key="paris"):
    qs = ["where was alice born ?", "what is 2 + 3 ?", "who works in oslo ?", "which city ?"]
    return [
        KnowledgeRecord(f"r{i}", qs[i % 4] + " " * (i // 4), f"the answer is {key}", key)
        for i in range(n)
    ]


def test_meta_and_sources(model, tok):
    cfg = TargetsConfig(mix_lambda=0.5, temperature=1.0, max_new_tokens=9, max_retries=1)
    targets = build_targets(model, tok, _records(4), cfg)
    assert [t.record.id for t in targets] == ["r0", "r1", "r2", "r3"]
    for t in targets:
        meta = t.meta
        # a rejected target says which check it failed (only the answer key here)
        assert set(meta) == META_KEYS | ({"failed_check"} if not meta["verified"] else set())
        assert meta.get("failed_check", "answer_key") == "answer_key"
        assert meta["method"] == "mixsd" and meta["lambda"] == 0.5 and meta["top_k"] == 64
        assert len(meta["sources"]) == meta["num_tokens"] and set(meta["sources"]) <= {"n", "e"}
        assert meta["naive_token_fraction"] == pytest.approx(
            meta["sources"].count("n") / meta["num_tokens"], abs=1e-6
        )
        assert meta["finish_reason"] in ("stop", "max_length")
        assert meta["verified"] == is_correct(t.target, "paris", "auto")
        assert 1 <= meta["attempts"] <= 2
        assert meta["verified"] or meta["attempts"] == 2


def test_retries_use_fresh_coins_until_verified(model, tok):
    """With a key word that random generations contain now and then, check each record's
    attempt count against the engine's output for every attempt."""
    cfg = TargetsConfig(
        mix_lambda=0.5, temperature=1.5, max_new_tokens=12, max_retries=6, extractor="contains"
    )
    records = _records(8, key="blue")
    targets = build_targets(model, tok, records, cfg)
    renderer = PromptRenderer(tok, cfg.guidance)
    settings = mix_settings(model, tok, renderer, cfg)
    attempts_seen = set()
    for rec, t in zip(records, targets, strict=True):
        job = dict(
            naive_ids=renderer.naive_ids(rec.prompt),
            expert_ids=renderer.expert_ids(rec.prompt, rec.answer),
        )
        results = []
        for attempt in range(1, t.meta["attempts"] + 1):
            (out,) = mix_generate(model, [MixJob(rec.id, attempt, **job)], settings)
            results.append(is_correct(renderer.decode_target(out.token_ids), "blue", "contains"))
        assert not any(results[:-1])  # every earlier attempt failed verification
        assert results[-1] == t.meta["verified"]
        assert t.meta["verified"] or t.meta["attempts"] == cfg.max_attempts
        attempts_seen.add(t.meta["attempts"])
    assert len(attempts_seen) > 1  # the fixture really exercises retries


def test_verified_when_key_is_in_greedy_output(model, tok):
    cfg = TargetsConfig(mix_lambda=1.0, max_new_tokens=10, extractor="contains")
    first = build_targets(model, tok, _records(1), cfg)[0]
    word = first.target.split()[3]
    rec = KnowledgeRecord("r0", first.record.prompt, "x", word)
    again = build_targets(model, tok, [rec], cfg)[0]
    assert again.meta["verified"] is True and again.meta["attempts"] == 1
    assert again.target == first.target


def test_deterministic_extremes_are_not_retried(model, tok):
    cfg = TargetsConfig(mix_lambda=0.0, temperature=0.0, max_new_tokens=6, max_retries=5)
    for t in build_targets(model, tok, _records(2, key="zzz-never"), cfg):
        assert t.meta["attempts"] == 1 and t.meta["verified"] is False


def test_prompt_too_long_is_reported_not_raised(tok):
    small = tiny_llama(tok, max_positions=24)
    long_rec = KnowledgeRecord("long", "where was alice born ? " * 10, "paris", "paris")
    short_rec = KnowledgeRecord("short", "who ?", "bob", "bob")
    cfg = TargetsConfig(max_new_tokens=30, guidance="knowledge", max_retries=2, temperature=1.0)
    long_t, short_t = build_targets(small, tok, [long_rec, short_rec], cfg)
    assert long_t.meta["finish_reason"] == "prompt_too_long"
    assert long_t.meta["verified"] is False and long_t.meta["attempts"] == 1
    assert long_t.target == "" and long_t.meta["num_tokens"] == 0
    assert short_t.meta["finish_reason"] in ("prompt_too_long", "max_length", "stop")


def test_sft_writes_the_reference_answer(tok):
    recs = [
        KnowledgeRecord("a", "q ?", "alice was born in paris . \\boxed{ paris }", "paris"),
        KnowledgeRecord("b", "q ?", "no idea", "5"),
    ]
    out = build_targets(None, tok, recs, TargetsConfig(method="sft"))
    assert [t.target for t in out] == [r.answer for r in recs]
    assert [t.meta["verified"] for t in out] == [True, False]
    assert out[0].meta["method"] == "sft" and out[0].meta["finish_reason"] == "stop"
    assert out[0].meta["num_tokens"] == len(
        tok(recs[0].answer, add_special_tokens=False)["input_ids"]
    )
    assert set(out[0].meta) == META_KEYS


def test_extra_stop_tokens(tok):
    renderer = PromptRenderer(tok)
    assert stop_token_ids(renderer, ["blue"]) == {
        tok.eos_token_id,
        tok.convert_tokens_to_ids("blue"),
    }
    with pytest.raises(ConfigError, match="not in the tokenizer"):
        stop_token_ids(renderer, ["no-such-token"])


def test_chat_template_stops_at_end_of_turn():
    chat = tiny_tokenizer(chat=True)
    renderer = PromptRenderer(chat)
    assert chat.convert_tokens_to_ids("<|end|>") in stop_token_ids(renderer)


def test_round_trip_check_rejects_what_the_read_back_misses(model, tok, monkeypatch):
    from mixsd.targets.build import TargetBuilder

    records = [KnowledgeRecord(f"r{i}", "where was alice born ?", "paris", "paris")
               for i in range(3)]
    cfg = dict(mix_lambda=0.5, temperature=1.0, max_new_tokens=6, max_retries=2,
               extractor="contains")
    # make the answer-key check pass every attempt, so that only the round trip decides
    monkeypatch.setattr("mixsd.targets.build.is_correct",
                        lambda text, key, extractor: "round trip says" not in text)
    calls = []

    def read_back(self, attempts, settings=None):
        calls.append(len(attempts))
        return ["round trip says no"] * len(attempts)

    monkeypatch.setattr(TargetBuilder, "round_trip", read_back)
    builder = TargetBuilder(model, tok, TargetsConfig(verify_round_trip=True, **cfg))
    out = list(builder.iter_targets(records))
    assert [t.verified for t in out] == [False] * 3
    assert {t.meta["failed_check"] for t in out} == {"round_trip"}
    assert builder.rejections == {"answer_key": 0, "entities": 0, "round_trip": 9}
    assert sum(calls) == 9  # every attempt was read back, batched
    plain = build_targets(model, tok, records, TargetsConfig(**cfg))
    assert all(t.verified for t in plain)


def test_round_trip_reads_the_target_back_through_the_engine(model, tok):
    from mixsd.targets.build import TargetBuilder

    rec = KnowledgeRecord("r", "where was alice born ?", "paris", "paris")
    builder = TargetBuilder(model, tok, TargetsConfig(max_new_tokens=5))
    answers = builder.round_trip([(rec, "alice was born in paris", 1), (rec, "oslo", 1)])
    assert len(answers) == 2 and builder.round_trip_tokens > 0
    # the same as generating greedily from the expert layout with the target as reference
    renderer = PromptRenderer(tok, "knowledge")
    ids = renderer.expert_ids(rec.prompt, "oslo")
    settings = mix_settings(model, tok, renderer, TargetsConfig(mix_lambda=0.0, max_new_tokens=5))
    direct = mix_generate(model, [MixJob("x", 1, ids, ids)], settings)[0]
    assert answers[1] == renderer.decode_target(direct.token_ids)


@pytest.mark.parametrize("text, verified", [("bob was born in paris", False),
                                             ("alice was born in paris", True)])
def test_entity_check_rejects_a_renamed_subject(model, tok, monkeypatch, text, verified):
    from mixsd.targets.build import TargetBuilder

    records = [KnowledgeRecord("r", "where was alice born ?", "alice was born in paris",
                               "paris", subject="alice")]
    cfg = dict(mix_lambda=0.5, max_new_tokens=6, max_retries=1, extractor="contains")
    builder = TargetBuilder(model, tok, TargetsConfig(verify_entities=True, **cfg))
    monkeypatch.setattr(builder.renderer, "decode_target", lambda ids: text)
    out = list(builder.iter_targets(records))[0]
    assert out.target == text and out.verified is verified
    if not verified:  # y* names the subject, the target does not; the key alone would pass
        assert out.meta["failed_check"] == "entities"
        assert out.meta["entity_problem"] == "missing 'alice'"
        assert builder.rejections["entities"] == 2 and out.meta["attempts"] == 2


def test_new_fields_at_their_defaults_keep_old_fingerprints():
    fp = TargetsConfig().fingerprint_dict()
    assert not {"mix_unit", "verify_entities", "verify_round_trip"} & set(fp)
    assert TargetsConfig(mix_unit="word").fingerprint_dict()["mix_unit"] == "word"


# -- the lambda fallback ---------------------------------------------------------------
def _attempt_text(model, tok, rec, cfg, attempt, mix_lambda):
    renderer = PromptRenderer(tok, cfg.guidance)
    settings = mix_settings(model, tok, renderer, cfg)
    (out,) = mix_generate(model, [MixJob(rec.id, attempt, renderer.naive_ids(rec.prompt),
                                         renderer.expert_ids(rec.prompt, rec.answer),
                                         mix_lambda=mix_lambda)], settings)
    return renderer.decode_target(out.token_ids)


def test_a_record_that_only_verifies_at_lambda_0_gets_a_lambda_0_target(model, tok):
    """The key is the pure expert's whole greedy answer (the extractor takes the whole text):
    no mixed attempt writes it (checked attempt by attempt below), so the record verifies
    only at the last level, lambda 0."""
    whole = "regex:^(.*)$"
    cfg = TargetsConfig(mix_lambda=0.5, lambda_fallback=[0.3, 0.15, 0.0], temperature=0.0,
                        max_new_tokens=16, max_retries=2, extractor=whole)
    # attempts 1-3 at 0.5, 4-6 at 0.3, 7-9 at 0.15, then attempt 10 at 0 (one: greedy)
    plan = [(a, 0.5) for a in (1, 2, 3)] + [(a, 0.3) for a in (4, 5, 6)] + \
        [(a, 0.15) for a in (7, 8, 9)]
    rec = expert = None
    words = [w for w in tok.get_vocab() if w.isalpha()][:40]
    candidates = [KnowledgeRecord(f"c{i}", " ".join(words[(7 * i + 3 * j) % 40] for j in range(5))
                                  + " ?", "the answer is " + words[i], "x") for i in range(40)]
    for cand in candidates:  # the first record whose mixed attempts all miss the key
        text = _attempt_text(model, tok, cand, cfg, 10, 0.0)
        probe = KnowledgeRecord(cand.id, cand.prompt, cand.answer, text)
        if not any(is_correct(_attempt_text(model, tok, probe, cfg, a, lam), text, whole)
                   for a, lam in plan):
            rec, expert = probe, text
            break
    assert rec is not None, "no record of the fixture verifies only at lambda 0"
    (target,) = build_targets(model, tok, [rec], cfg)
    assert target.meta["verified"] is True and target.target == expert
    assert target.meta["lambda"] == 0.0 and target.meta["lambda_requested"] == 0.5
    assert target.meta["fallback_level"] == 3 and target.meta["attempts"] == 10
    assert set(target.meta["sources"]) <= {"e"}  # lambda 0: every token is the expert's
    # the paper's rule (no fallback): the same record stays unverified at lambda 0.5
    (paper,) = build_targets(model, tok, [rec], TargetsConfig(
        mix_lambda=0.5, temperature=0.0, max_new_tokens=16, max_retries=2, extractor=whole))
    assert paper.meta["verified"] is False and paper.meta["lambda"] == 0.5
    assert paper.meta["attempts"] == 3 and "fallback_level" not in paper.meta


def test_the_fallback_stops_at_the_first_lambda_that_verifies(model, tok):
    """A key that the attempt-4 target at 0.3 writes: the record's target is that one."""
    cfg = TargetsConfig(mix_lambda=0.5, lambda_fallback=[0.3, 0.0], temperature=1.0,
                        max_new_tokens=10, max_retries=2, extractor="contains")
    rec0 = _records(1)[0]
    early = [_attempt_text(model, tok, rec0, cfg, a, 0.5) for a in (1, 2, 3)]
    at_03 = _attempt_text(model, tok, rec0, cfg, 4, 0.3)
    key = next(w for w in at_03.split() if not any(w in t for t in early))
    rec = KnowledgeRecord("r0", rec0.prompt, rec0.answer, key)
    (target,) = build_targets(model, tok, [rec], cfg)
    assert (target.meta["lambda"], target.meta["attempts"], target.meta["verified"]) == \
        (0.3, 4, True)
    assert target.target == at_03


def test_fallback_targets_do_not_depend_on_the_batch(model, tok):
    cfg = dict(mix_lambda=0.7, lambda_fallback=[0.4, 0.0], temperature=1.0, max_new_tokens=8,
               max_retries=1, extractor="contains")
    records = _records(6, key="the")
    one = build_targets(model, tok, records, TargetsConfig(batch_size=1, **cfg))
    many = build_targets(model, tok, records, TargetsConfig(batch_size=4, **cfg))
    assert [(t.target, t.meta) for t in one] == [(t.target, t.meta) for t in many]


def test_lambda_fallback_must_descend(tok):
    with pytest.raises(ConfigError, match="lambda_fallback"):
        TargetsConfig(mix_lambda=0.3, lambda_fallback=[0.5]).validate()
    with pytest.raises(ConfigError, match="lambda_fallback"):
        TargetsConfig(mix_lambda=0.5, lambda_fallback=[0.3, 0.3]).validate()
    with pytest.raises(ConfigError, match="lambda_fallback"):
        TargetsConfig(method="sft", lambda_fallback=[0.1]).validate()
    TargetsConfig(mix_lambda=0.5, lambda_fallback=[0.3, 0.0]).validate()


def test_the_summary_counts_targets_by_realised_lambda():
    from mixsd.targets.run import realised_lambdas

    metas = [{"lambda": 0.5, "verified": True}, {"lambda": 0.0, "verified": True},
             {"lambda": 0.0, "verified": False}, {"lambda": None, "verified": True}]
    assert realised_lambdas(metas) == {"0.5": {"verified": 1, "unverified": 0},
                                       "0": {"verified": 1, "unverified": 1}}


def test_retry_temperature_samples_the_retries_of_greedy_lambda_0(model, tok):
    """Greedy lambda 0 gets one attempt; with retry_temperature its retries are sampled (the
    first attempt stays greedy) and the target records the temperature that made it."""
    import dataclasses

    cfg = TargetsConfig(mix_lambda=0.0, temperature=0.0, retry_temperature=1.5,
                        max_new_tokens=10, max_retries=3, extractor="contains")
    rec0 = _records(1)[0]
    greedy = _attempt_text(model, tok, rec0, cfg, 1, 0.0)
    renderer = PromptRenderer(tok, cfg.guidance)
    hot = dataclasses.replace(mix_settings(model, tok, renderer, cfg), temperature=1.5)
    (second,) = mix_generate(model, [MixJob(rec0.id, 2, renderer.naive_ids(rec0.prompt),
                                            renderer.expert_ids(rec0.prompt, rec0.answer))], hot)
    sampled = renderer.decode_target(second.token_ids)
    key = next(w for w in sampled.split() if w not in greedy.split())
    rec = KnowledgeRecord("r0", rec0.prompt, rec0.answer, key)
    (target,) = build_targets(model, tok, [rec], cfg)
    assert (target.target, target.meta["attempts"], target.meta["temperature"]) == \
        (sampled, 2, 1.5)
    # without it: one greedy attempt, unverified
    (once,) = build_targets(model, tok, [rec], dataclasses.replace(cfg, retry_temperature=0.0))
    assert (once.meta["attempts"], once.meta["verified"], once.meta["temperature"]) == \
        (1, False, 0.0)
