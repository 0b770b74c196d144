"""The slot engine (continuous batching): refilled slots give the reference's targets, and the
continuous builder writes the same targets as the static one and as batch size 1."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord
from mixsd.targets import TargetsConfig
from mixsd.targets.build import TargetBuilder, mix_settings
from mixsd.targets.engine import MixJob
from mixsd.targets.reference import reference_generate_one
from mixsd.targets.stream import MixStream
from mixsd.testing import MIX_ANSWERS, MIX_QUESTIONS, tiny_gpt2, tiny_llama, tiny_tokenizer

QUESTIONS, ANSWERS = list(MIX_QUESTIONS), list(MIX_ANSWERS)


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def setup(request):
    tok = tiny_tokenizer()
    model = (tiny_llama if request.param == "llama" else tiny_gpt2)(tok).eval()
    return model, tok, PromptRenderer(tok, "knowledge")


def _settings(model, tok, renderer, **kw):
    cfg = TargetsConfig(**{"max_new_tokens": 12, "top_k": 16, **kw})
    return mix_settings(model, tok, renderer, cfg)


def _run(stream, queue, refill_at=None):
    """Drive ``stream`` like the builder: fill free slots from ``queue`` before each step."""
    outputs = {}
    while queue or stream.busy():
        n = min(len(queue), stream.free_slots())
        items, queue[:n] = queue[:n], []
        stream.admit(items)
        for tag, out in stream.step():
            outputs[tag] = out
    return outputs


@pytest.mark.parametrize("temperature", [0.0, 1.3])
def test_refilled_slots_match_the_reference(setup, temperature):
    """Three slots, many attempts of different lengths (a frequent stop token), prompts of
    all lengths joining mid-run (a longer one than all before forces the buffer to grow to the
    left; the number of steps forces the live window to move): every attempt equals the slow
    reference."""
    model, tok, renderer = setup
    settings = _settings(model, tok, renderer, mix_lambda=0.5, temperature=temperature)
    order = [2, 5, 0, 3, 1, 4, 2, 0, 4, 1, 3, 5]  # short prompts first, the longest later
    jobs = [MixJob(f"q{i}", a, renderer.naive_ids(QUESTIONS[i]),
                   renderer.expert_ids(QUESTIONS[i], ANSWERS[i]), mix_lambda=lam)
            for a, (i, lam) in enumerate(zip(order, [0.5, 0.2, 0.9] * 4), start=1)]
    with torch.inference_mode():
        first = _run(MixStream(model, settings, slots=3),
                     [(j, job, None) for j, job in enumerate(jobs)])
        made = [t for o in first.values() for t in o.token_ids[1:-1]]
        frequent = max(set(made), key=made.count)  # a stop that ends attempts mid-way
        settings = dataclasses.replace(settings,
                                       stop_token_ids=settings.stop_token_ids | {frequent})
        stream = MixStream(model, settings, slots=3)
        got = _run(stream, [(j, job, None) for j, job in enumerate(jobs)])
        expected = [reference_generate_one(model, job, settings) for job in jobs]
    assert [got[j] for j in range(len(jobs))] == expected
    assert len({len(o.token_ids) for o in expected}) > 1  # attempts end at different steps


def test_retries_reuse_the_prompt_caches(setup):
    """A retry (same key) runs no prefill; its output is still the reference's."""
    model, tok, renderer = setup
    settings = _settings(model, tok, renderer, mix_lambda=0.5, temperature=1.0)
    naive, expert = renderer.naive_ids(QUESTIONS[1]), renderer.expert_ids(QUESTIONS[1],
                                                                          ANSWERS[1])
    widths = []
    hook = model.register_forward_pre_hook(
        lambda _m, _a, kw: widths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    try:
        with torch.inference_mode():
            stream = MixStream(model, settings, slots=1)
            jobs = [MixJob("r", attempt, naive, expert) for attempt in (1, 2, 3)]
            outs, prefills = [], []
            for job in jobs:
                before = len(widths)
                outs.append(_run(stream, [(0, job, "r")])[0])
                prefills.append(sum(w > 1 for w in widths[before:]))
    finally:
        hook.remove()
    assert prefills[0] > 0 and prefills[1:] == [0, 0]  # prompts prefilled once, not per retry
    with torch.inference_mode():
        assert outs == [reference_generate_one(model, job, settings) for job in jobs]


def test_prompt_too_long_and_one_token_prompts(setup):
    model, tok, renderer = setup
    settings = _settings(model, tok, renderer, mix_lambda=0.5, temperature=1.0,
                         max_new_tokens=5)
    settings = dataclasses.replace(settings, context_length=40)
    long_q = "where was alice born ? " * 10
    jobs = [MixJob("one", 1, [tok.convert_tokens_to_ids("who")],
                   renderer.expert_ids("who", "dave")),
            MixJob("long", 1, renderer.naive_ids(long_q), renderer.expert_ids(long_q, "x")),
            MixJob("short", 1, renderer.naive_ids("who"), renderer.expert_ids("who", "dave"))]
    with torch.inference_mode():
        got = _run(MixStream(model, settings, slots=2), [(j, job, None)
                                                         for j, job in enumerate(jobs)])
        assert [got[j] for j in range(3)] == [reference_generate_one(model, job, settings)
                                              for job in jobs]
    assert got[1].finish_reason == "prompt_too_long"


def _records(n=12):
    return [KnowledgeRecord(f"r{i}", QUESTIONS[i % 6] + " " * (i // 6), ANSWERS[i % 6],
                            ANSWERS[i % 6].split()[-1]) for i in range(n)]


def _targets(model, tok, records, schedule, **cfg):
    builder = TargetBuilder(model, tok, TargetsConfig(**cfg), schedule=schedule)
    return [t.to_dict() for t in builder.iter_targets(records)]


@pytest.mark.parametrize("extra", [
    dict(temperature=1.5, max_retries=6),
    dict(temperature=0.0, mix_lambda=0.5, lambda_fallback=[0.3, 0.0], max_retries=2,
         retry_temperature=1.0),
    dict(temperature=1.0, max_retries=3, mix_unit="span"),
], ids=["retries", "fallback", "span"])
def test_continuous_equals_static_and_batch_one(extra):
    """Records needing different numbers of attempts: the continuous builder (slots refilled
    as attempts end) writes the static builder's targets, at any number of slots and in any
    input order."""
    tok = tiny_tokenizer()
    model = tiny_llama(tok)
    records = _records()
    cfg = {"mix_lambda": 0.5, "max_new_tokens": 10, "extractor": "contains", **extra}
    static = _targets(model, tok, records, "static", batch_size=4, **cfg)
    one = _targets(model, tok, records, "continuous", batch_size=1, **cfg)
    three = _targets(model, tok, records, "continuous", batch_size=3, **cfg)
    shuffled = records[:]
    random.Random(5).shuffle(shuffled)
    by_id = {t["id"]: t for t in _targets(model, tok, shuffled, "continuous", batch_size=5,
                                            **cfg)}
    assert static == one == three == [by_id[r.id] for r in records]
    attempts = {t["meta"]["attempts"] for t in static}
    assert len(attempts) > 1  # records really need different numbers of attempts


def test_window_moves_when_the_buffer_is_full(setup):
    """Many short attempts through two slots: the buffer fills up and the live window moves
    to the front of a new one (more steps than columns); attempts still equal the reference."""
    model, tok, renderer = setup
    settings = _settings(model, tok, renderer, mix_lambda=0.5, temperature=1.0)
    jobs = [MixJob("w", a, renderer.naive_ids("who"), renderer.expert_ids("who", "dave"))
            for a in range(1, 11)]
    with torch.inference_mode():
        stream = MixStream(model, settings, slots=2)
        queue, outputs, steps = [(j, job, "w") for j, job in enumerate(jobs)], {}, 0
        while queue or stream.busy():
            n = min(len(queue), stream.free_slots())
            items, queue[:n] = queue[:n], []
            stream.admit(items)
            outputs.update(stream.step())
            steps += 1
        assert steps > stream.keys.shape[3]  # more steps than the buffer has columns
        assert [outputs[j] for j in range(10)] == [
            reference_generate_one(model, job, settings) for job in jobs]


@pytest.mark.parametrize("pairs", [
    [(0, 0), (3, 3), (5, 1)],  # one chat header, each naive prompt inside its expert prompt
    [(4, 4)],  # a single record: the head is its whole naive prompt
], ids=["batch", "one"])
def test_shared_prefix_prefill_equals_whole_prompts(setup, pairs):
    """Prefilling the common chat header once, each expert prompt from it and each naive
    prompt from its expert prompt gives the caches of whole-prompt prefill (same tokens at the
    same positions; llama's RoPE and gpt2's absolute positions) for fewer prefill tokens; a
    naive prompt that shares nothing with its expert prompt is run whole."""
    model, tok, renderer = setup
    settings = _settings(model, tok, renderer, mix_lambda=0.5)
    jobs = {f"k{i}": MixJob(f"q{i}", 1, renderer.naive_ids(QUESTIONS[q]),
                            renderer.expert_ids(QUESTIONS[q], ANSWERS[a]))
            for i, (q, a) in enumerate(pairs)}
    if len(pairs) > 1:  # no common head left: the expert prompts are run whole
        jobs["bare"] = MixJob("bare", 1, [tok.convert_tokens_to_ids("who"), 5, 6],
                              renderer.expert_ids(QUESTIONS[4], ANSWERS[4]))
    got = {}
    for share in (False, True):
        tokens: list[int] = []

        def count(_m, _a, kw, tokens=tokens):  # the prompt tokens each forward runs
            tokens.append(int(kw["attention_mask"][:, -kw["input_ids"].shape[1]:].sum()))

        hook = model.register_forward_pre_hook(count, with_kwargs=True)
        try:
            with torch.inference_mode():
                stream = MixStream(model, settings, slots=len(jobs), share_prefixes=share)
                stream._prefill(jobs)
        finally:
            hook.remove()
        got[share] = (stream.prompts, sum(tokens))
    (whole, whole_tokens), (shared, shared_tokens) = got[False], got[True]
    assert shared_tokens < whole_tokens
    for key, prompts in whole.items():
        for name in ("naive_keys", "naive_values", "expert_keys", "expert_values"):
            a, b = getattr(prompts, name), getattr(shared[key], name)
            assert a.shape == b.shape, (key, name)
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
