"""The toy world as a mixsd plug-in: everything the rest of mixsd knows about it.

:func:`register` (run by :func:`mixsd.registry.load_plugins`) adds

* the model alias ``toy`` (the embedded model, installed or pretrained on first use), also
  the default model of the commands that need one;
* the guidance presets ``toy`` and ``toy-own``;
* the suite kind ``toy`` / ``toy:NAME`` (the world's probes; options ``toy_items``,
  ``toy_seed``);
* the corpus ``toy`` (facts about new entities, made for the toy model only);
* the toy model's defaults: guidance ``toy``, suites ``toy``, corpus ``toy``, MEMIT text
  source ``toy``, learning rate 1e-3 (``mixsd inject``);
* the MEMIT text source ``toy`` (documents of the world) and the verb ``mixsd toy``.
"""

from __future__ import annotations

from typing import Any

from mixsd.errors import ConfigError
from mixsd.registry import (
    CorpusSource,
    ModelDefaults,
    Registries,
    SuiteKind,
    SuiteOption,
    TextSource,
    Verb,
)
from mixsd.toyworld import TOY_GUIDANCE, TOY_OWN_GUIDANCE

NAME = "toy"
# The suite kind's options. toy_items was a field of the eval config (and the comparison's
# eval_items): it stays in every recorded config, so fingerprints made before are unchanged.
SUITE_OPTIONS = {
    "toy_items": SuiteOption(200, "questions per toy suite", min=1, recorded=True,
                             also=("eval_items",)),
    "toy_seed": SuiteOption(0, "seed of the toy suites' questions", min=0),
}


def _model_path() -> str:
    from mixsd.toyworld.cache import ensure_toy_model

    return str(ensure_toy_model())


def _unknown(rest: str, names: Any, flag: str) -> ConfigError:
    return ConfigError(f"unknown toy suite {rest!r}; choose from "
                       f"{', '.join('toy:' + n for n in names)} (flag {flag})")


def check_suite(spec: str, rest: str, flag: str) -> None:
    """``toy`` or ``toy:NAME`` with NAME one of the world's probes."""
    from mixsd.toyworld.suites import SUITE_NAMES

    if rest and rest not in SUITE_NAMES:
        raise _unknown(rest, SUITE_NAMES, flag)


def build_suites(spec: str, rest: str, opts: dict) -> dict[str, Any]:
    """Every probe (``toy``) or one (``toy:NAME``), ``toy_items`` questions each."""
    from mixsd.toyworld.suites import toy_suites  # building the world is not free

    found = toy_suites(n_items=opts.get("toy_items", SUITE_OPTIONS["toy_items"].default),
                       seed=opts.get("toy_seed", SUITE_OPTIONS["toy_seed"].default))
    if not rest:
        return {f"toy:{name}": suite for name, suite in found.items()}
    if rest not in found:
        raise _unknown(rest, found, "--suite")
    return {spec: found[rest]}


def corpus_records(n_facts: int | None, seed: int) -> list:
    """The injection corpus: ``n_facts`` (default 100) facts about new entities."""
    from mixsd.toyworld.suites import injection_records

    return injection_records(n_facts or 100, seed=seed)


def _texts(n: int, seed: int) -> list[str]:
    from mixsd.toyworld.texts import toy_texts

    return toy_texts(n, seed)


def _prefixes(n: int, words: int, seed: int) -> list[str]:
    from mixsd.toyworld.texts import toy_prefixes

    return toy_prefixes(n, words, seed)


def register(r: Registries) -> None:
    """Register the toy world (see the module docstring)."""
    r.models.register(NAME, _model_path)
    r.default_model = r.default_model or NAME
    r.guidance.register(TOY_GUIDANCE.name, TOY_GUIDANCE)
    r.guidance.register(TOY_OWN_GUIDANCE.name, TOY_OWN_GUIDANCE)
    r.suite_kinds.register(NAME, SuiteKind(build_suites, check_suite, usage=NAME,
                                           options=SUITE_OPTIONS))
    r.corpora.register(NAME, CorpusSource(corpus_records, model=NAME))
    # lr 1e-3: the toy model's calibrated rate (docs/demo/calibration.md)
    r.model_defaults.register(NAME, ModelDefaults(guidance=TOY_GUIDANCE.name, suites=(NAME,),
                                                  corpus=NAME, text_source=NAME, lr=1e-3))
    r.text_sources.register(NAME, TextSource(_texts, _prefixes))
    r.verbs.register(NAME, Verb("mixsd.toyworld.command",
                                "build or inspect the embedded toy world base model"))
