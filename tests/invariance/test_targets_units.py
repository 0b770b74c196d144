"""Mixing units: fused engine == reference for word and span; word == token on a WordLevel
vocabulary; the word unit never mixes sources inside a word of a BPE vocabulary."""

from __future__ import annotations

import dataclasses

import pytest

from mixsd.prompts import PromptRenderer
from mixsd.records import KnowledgeRecord
from mixsd.targets import TargetsConfig, build_targets
from mixsd.targets.build import mix_settings
from mixsd.targets.engine import MixJob, mix_generate
from mixsd.targets.reference import reference_generate
from mixsd.targets.words import word_sources, word_start_table
from mixsd.testing import tiny_bpe_tokenizer, tiny_gpt2, tiny_llama, tiny_tokenizer

QUESTIONS = ["where was Alice born ?", "what is 2 + 3 ?", "who works in Oslo and Tulsa ?",
             "which city is the new knowledge base of Carol ?"]
ANSWERS = ["Alice was born in Paris", "the answer is 5 . \\boxed{ 5 }", "Dave Erin",
           "the reference city is Lima"]


def _records(n=8):
    return [KnowledgeRecord(f"r{i}", QUESTIONS[i % 4] + " ?" * (i // 4), ANSWERS[i % 4],
                            ANSWERS[i % 4].split()[-1]) for i in range(n)]


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def bpe_setup(request):
    tok = tiny_bpe_tokenizer()
    model = (tiny_llama if request.param == "llama" else tiny_gpt2)(tok)
    return model, tok


def _jobs_and_settings(model, tok, unit, **kw):
    cfg = TargetsConfig(mix_unit=unit, max_new_tokens=16, top_k=8, **kw)
    renderer = PromptRenderer(tok, "knowledge")
    settings = mix_settings(model, tok, renderer, cfg)
    settings = dataclasses.replace(settings, stop_token_ids=frozenset())
    ref = [tok(a, add_special_tokens=False)["input_ids"] for a in ANSWERS]
    jobs = [MixJob(f"q{i}", 1, renderer.naive_ids(q), renderer.expert_ids(q, a), ref[i])
            for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))]
    return jobs, settings


@pytest.mark.parametrize("unit", ["word", "span"])
@pytest.mark.parametrize("temperature", [0.0, 1.3])
@pytest.mark.parametrize("mix_lambda", [0.3, 0.7])
def test_fused_equals_reference(bpe_setup, unit, temperature, mix_lambda):
    model, tok = bpe_setup
    jobs, settings = _jobs_and_settings(model, tok, unit, mix_lambda=mix_lambda,
                                        temperature=temperature)
    fused = mix_generate(model, jobs, settings)
    slow = reference_generate(model, jobs, settings)
    assert [o.token_ids for o in fused] == [o.token_ids for o in slow]
    assert [o.sources for o in fused] == [o.sources for o in slow]
    if mix_lambda == 0.3:  # both conditionals really are used (at 0.7 the first coin of a
        joined = "".join(o.sources for o in fused)  # random model's few words often decides)
        assert "n" in joined and "e" in joined


def test_word_unit_keeps_each_word_to_one_source(bpe_setup):
    model, tok = bpe_setup
    jobs, settings = _jobs_and_settings(model, tok, "word", mix_lambda=0.5, temperature=1.3)
    starts = word_start_table(tok)
    outs = mix_generate(model, jobs, settings)
    per_word = [word_sources(o.token_ids, o.sources, starts) for o in outs]
    assert all("m" not in w for w in per_word)
    assert sum(len(w) for w in per_word) < sum(len(o.sources) for o in outs)  # multi-token words
    token_jobs, token_settings = _jobs_and_settings(model, tok, "token", mix_lambda=0.5,
                                                    temperature=1.3)
    token_outs = mix_generate(model, token_jobs, token_settings)
    assert any("m" in word_sources(o.token_ids, o.sources, starts) for o in token_outs)


def test_span_unit_takes_the_expert_while_it_copies_the_reference(bpe_setup):
    """With lambda 1 the coins always say naive: only the span rule can pick the expert, and
    it does so exactly where the expert's token continues a bigram of y*."""
    model, tok = bpe_setup
    jobs, settings = _jobs_and_settings(model, tok, "span", mix_lambda=1.0)
    for job, out in zip(jobs, reference_generate(model, jobs, settings), strict=True):
        bigrams = set(zip(job.reference_ids, job.reference_ids[1:]))
        for t, source in enumerate(out.sources):
            if source == "e":
                assert t > 0 and (out.token_ids[t - 1], out.token_ids[t]) in bigrams
    lam0, _ = _jobs_and_settings(model, tok, "span", mix_lambda=0.0)
    expert = mix_generate(model, lam0, dataclasses.replace(settings, mix_lambda=0.0))
    assert all(set(o.sources) == {"e"} for o in expert)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_word_equals_token_on_a_word_level_vocabulary(temperature):
    tok = tiny_tokenizer()
    model = tiny_llama(tok)
    cfg = dict(mix_lambda=0.5, temperature=temperature, max_new_tokens=10, max_retries=2,
               extractor="contains")
    token = build_targets(model, tok, _records(), TargetsConfig(mix_unit="token", **cfg))
    word = build_targets(model, tok, _records(), TargetsConfig(mix_unit="word", **cfg))
    assert [t.target for t in word] == [t.target for t in token]
    assert [t.meta["sources"] for t in word] == [t.meta["sources"] for t in token]
    assert [t.meta["word_sources"] for t in word] == [t.meta["sources"] for t in token]


@pytest.mark.parametrize("unit", ["word", "span"])
def test_batch_size_does_not_change_unit_targets(bpe_setup, unit):
    model, tok = bpe_setup
    cfg = dict(mix_unit=unit, mix_lambda=0.5, temperature=1.0, max_new_tokens=10,
               max_retries=1, extractor="contains")
    one = build_targets(model, tok, _records(), TargetsConfig(batch_size=1, **cfg))
    five = build_targets(model, tok, _records(), TargetsConfig(batch_size=5, **cfg))
    assert [t.to_dict() for t in one] == [t.to_dict() for t in five]
    assert all(t.meta["mix_unit"] == unit and "word_sources" in t.meta for t in one)
