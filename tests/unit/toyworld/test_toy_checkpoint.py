"""The checkpoint shipped in the package: it loads as ``toy`` and really has the skills."""

import pytest

from mixsd.models import load_model_and_tokenizer
from mixsd.toyworld import cache, toy_suites


def test_shipped_checkpoint_matches_the_default_config():
    manifest = cache.read_manifest(cache.SHIPPED)
    assert manifest is not None, "no shipped toy checkpoint"
    assert manifest["config_hash"] == cache.config_hash(*cache.toy_configs())
    assert cache.manifest_matches(cache.SHIPPED, cache.config_hash(*cache.toy_configs()))
    assert not cache.manifest_matches(cache.SHIPPED, "0" * 12)
    size = sum(p.stat().st_size for p in cache.SHIPPED.iterdir())
    assert size <= 2 * 1024 * 1024


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("home")
    mp.setenv("MIXSD_HOME", str(home))
    model, tok = load_model_and_tokenizer("toy", device="cpu")
    yield model, tok, home
    mp.undo()


def test_toy_resolves_to_the_installed_shipped_checkpoint(toy):
    model, tok, home = toy
    folders = list(home.glob("toy-*"))
    assert len(folders) == 1 and (folders[0] / "model.safetensors").is_file()
    assert (folders[0] / "model.safetensors").read_bytes() == \
        (cache.SHIPPED / "model.safetensors").read_bytes()


@pytest.mark.parametrize("suite,minimum", [("recall", 0.9), ("paraphrase", 0.8),
                                           ("in_context", 0.85),
                                           ("arithmetic", 0.85)])
def test_shipped_model_scores_well(toy, suite, minimum):
    model, tok, _ = toy
    result = toy_suites(30, seed=1)[suite].evaluate(model, tok)
    assert result.n == 30 and result.score >= minimum, result.samples[:3]


def _answers(toy, guidance, expert):
    from mixsd.generation import greedy_generate
    from mixsd.prompts import PromptRenderer
    from mixsd.toyworld import injection_records

    model, tok, _ = toy
    recs, r = injection_records(20), PromptRenderer(tok, guidance)
    prompts = [r.expert_ids(x.prompt, x.answer) if expert else r.naive_ids(x.prompt)
               for x in recs]
    out = greedy_generate(model, tok, prompts, max_new_tokens=24, stop_token_ids=r.stop_ids(model))
    return recs, [r.decode_target(ids) for ids in out]


def test_naive_conditional_answers_in_its_own_style(toy):
    recs, texts = _answers(toy, "toy", expert=False)
    assert sum(t.startswith(x.subject + " ") for t, x in zip(texts, recs)) >= 18
    assert not any(t.startswith("the answer is") for t in texts)


def test_echo_guidance_repeats_the_reference_style(toy):
    recs, texts = _answers(toy, "toy", expert=True)
    assert sum(t.startswith("the answer is") for t in texts) >= 18


@pytest.mark.parametrize("guidance", ["toy", "toy-own"])
def test_expert_conditional_uses_the_reference(toy, guidance):
    recs, texts = _answers(toy, guidance, expert=True)
    assert sum(x.answer_key in t.split() for t, x in zip(texts, recs)) >= 18


@pytest.mark.slow
def test_rebuild_reproduces_the_shipped_bytes(tmp_path):
    cache.build_toy_model(tmp_path / "toy", *cache.toy_configs(), progress=False,
                          measure=False)
    for path in cache.SHIPPED.iterdir():
        if path.name != cache.MANIFEST:
            assert (tmp_path / "toy" / path.name).read_bytes() == path.read_bytes(), path.name
