"""The registries of mixsd.registry and plug-ins: built-in, third party (entry points)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mixsd import registry
from mixsd.errors import ConfigError
from mixsd.registry import ModelDefaults, Registry, SuiteKind


def test_unknown_name_is_one_line_listing_the_choices_and_the_flag():
    reg: Registry[int] = Registry("widget", "--widget")
    reg.register("a", 1)
    reg.register("b", 2)
    assert reg.get("b") == 2 and "a" in reg and "c" not in reg and reg.names() == ["a", "b"]
    assert reg.find("c") is None
    with pytest.raises(ConfigError) as exc:
        reg.get("c")
    assert str(exc.value) == "unknown widget 'c'; choose from a, b (flag --widget)"
    with pytest.raises(ConfigError, match="flag --other"):
        reg.get("c", flag="--other")
    with pytest.raises(ConfigError, match="widget 'a' is registered twice"):
        reg.register("a", 3)
    reg.register("a", 3, replace=True)
    assert reg.get("a") == 3


def test_builtin_plugins_register_the_shipped_names():
    r = registry.REGISTRIES
    assert {"knowledge", "math", "toy", "toy-own"} <= set(r.guidance.names())
    assert {"toy", "smollm2"} <= set(r.models.names())
    assert ".gguf" in r.model_formats
    assert {"toy", "general", "records", "math", "mcq", "lmeval", "known"} <= set(
        r.suite_kinds.names())
    assert registry.default_model() == "toy"
    assert registry.model_defaults("toy") == ModelDefaults(
        guidance="toy", suites=("toy",), corpus="toy", text_source="toy", lr=1e-3)
    assert registry.model_defaults("some/hub-model") == ModelDefaults()
    assert r.verbs.get("toy").module == "mixsd.toyworld.command"


def test_isolated_undoes_registrations(registries):
    with registry.isolated() as r:
        r.guidance.register("scratch", object())
        assert "scratch" in r.guidance
    assert "scratch" not in registries.guidance


@pytest.fixture
def tiny_path(tmp_path, tiny_tok, tiny_model):
    from mixsd.testing import save_tiny

    return save_tiny(tmp_path / "tiny", tiny_model, tiny_tok)


def _third_party(tiny_path: str):
    """A plug-in as a third-party package would ship it: an alias, a guidance preset, a suite
    kind and the alias's defaults."""
    from mixsd.evaluation.qa import QASuite
    from mixsd.prompts import GuidancePreset
    from mixsd.records import KnowledgeRecord

    def build(spec, rest, opts):
        records = [KnowledgeRecord(id=f"q{i}", prompt=f"where was {n} born ?", answer=c,
                                   answer_key=c)
                   for i, (n, c) in enumerate([("alice", "paris"), ("bob", "oslo")])]
        return {spec: QASuite(spec, records[: int(rest) if rest else None],
                              max_new_tokens=3, guidance="tiny-qa")}

    def check(spec, rest, flag):
        if rest and not rest.isdigit():
            raise ConfigError(f"suite {spec!r}: tinyq:N takes a count (flag {flag})")

    def register(r):
        r.models.register("tiny-test", lambda: tiny_path)
        r.guidance.register("tiny-qa", GuidancePreset("tiny-qa", prefix="answer :", suffix="",
                                                      naive_format="q : {prompt} a :"))
        r.suite_kinds.register("tinyq", SuiteKind(build, check, usage="tinyq[:N]"))
        r.model_defaults.register("tiny-test", ModelDefaults(guidance="tiny-qa",
                                                             suites=("tinyq",)))

    return SimpleNamespace(register=register)


def test_an_entry_point_plugin_adds_an_alias_a_preset_and_a_suite_kind(monkeypatch, tiny_path):
    from mixsd.evaluation.suites import check_suites, get_suites
    from mixsd.experiment import CompareConfig
    from mixsd.models import load_model_and_tokenizer, resolve_model_path
    from mixsd.prompts import PromptRenderer, resolve_guidance_name

    plugin = _third_party(tiny_path)
    ep = SimpleNamespace(name="tiny", value="tiny_mixsd.plugin", load=lambda: plugin)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    with registry.isolated(reload=True) as r:
        assert "tiny-test" in r.models and "toy" in r.models  # built-ins load first
        model, tok = load_model_and_tokenizer("tiny-test", device="cpu")
        assert resolve_model_path("tiny-test") == tiny_path
        assert resolve_model_path("tiny-test:anything") == tiny_path
        suites = get_suites("tinyq:1,tinyq")
        assert list(suites) == ["tinyq:1", "tinyq"] and suites["tinyq"].guidance == "tiny-qa"
        result = suites["tinyq"].evaluate(model, tok, batch_size=2)
        assert result.n == 2 and 0.0 <= result.score <= 1.0
        assert PromptRenderer(tok, "tiny-qa").naive_text("x") == "q : x a :"
        assert resolve_guidance_name("auto", "tiny-test") == "tiny-qa"
        config = CompareConfig(model="tiny-test", corpus=str(tiny_path), methods=["sft"])
        assert config.resolved_suites() == ["tinyq"] and config.resolved_guidance() == "tiny-qa"
        with pytest.raises(ConfigError, match="tinyq:N takes a count"):
            check_suites("tinyq:x")
        with pytest.raises(ConfigError, match=r"a suite is one of .*tinyq\[:N\]"):
            check_suites("nope")
    assert "tiny-test" not in registry.REGISTRIES.models


def test_a_broken_entry_point_is_one_line(monkeypatch):
    def fail():
        raise ImportError("no module named tiny_mixsd")

    ep = SimpleNamespace(name="tiny", value="tiny_mixsd.plugin", load=fail)
    monkeypatch.setattr(registry, "_entry_points", lambda: [ep])
    with registry.isolated(reload=True) as r:
        with pytest.raises(ConfigError, match="plug-in 'tiny' .* failed to load: no module"):
            r.models.names()
    with registry.isolated(reload=True) as r:
        monkeypatch.setattr(registry, "_entry_points", lambda: [
            SimpleNamespace(name="bare", value="x", load=lambda: SimpleNamespace())])
        with pytest.raises(ConfigError, match="plug-in 'bare' has no register"):
            r.models.names()


def test_the_cli_lists_and_runs_a_plugin_verb(registries, capsys):
    from mixsd.cli import main

    registries.verbs.register("hello", registry.Verb("mixsd.commands.report", "say hello"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "hello     say hello" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["hello", "--help"])
    assert "usage: mixsd hello" in capsys.readouterr().out
