"""The embedded default: a synthetic world and a small Llama pretrained on it on CPU.

The world is a plug-in of mixsd (:mod:`mixsd.toyworld.plugin`, run by
:func:`mixsd.registry.load_plugins`): it registers the ``toy`` model alias (resolved by
:func:`ensure_toy_model`), the ``toy`` guidance preset (the expert answer mostly repeats the
shown reference, as real models often do) and ``toy-own`` (the expert answers in its own
words), the ``toy`` suites and corpus and the ``mixsd toy`` verb. Importing this package
registers nothing. Prompts are plain text: naive ``Q : {prompt} A :``, expert
``Q : {prompt} reference : {answer} {prefix} Q : {prompt} A :``.
"""

from __future__ import annotations

from mixsd.prompts import GuidancePreset
from mixsd.toyworld.cache import ensure_toy_model, measure_toy_model, mixsd_home
from mixsd.toyworld.suites import SUITE_NAMES, injection_records, suite_records, toy_suites
from mixsd.toyworld.world import ECHO_GUIDANCE, OWN_GUIDANCE, World, WorldConfig

NAIVE_FORMAT = "Q : {prompt} A :"
EXPERT_FORMAT = "Q : {prompt} reference : {answer} {prefix} Q : {prompt} A :"

TOY_GUIDANCE = GuidancePreset("toy", prefix=ECHO_GUIDANCE, suffix="", naive_format=NAIVE_FORMAT,
                              expert_format=EXPERT_FORMAT)
TOY_OWN_GUIDANCE = GuidancePreset("toy-own", prefix=OWN_GUIDANCE, suffix="",
                                  naive_format=NAIVE_FORMAT, expert_format=EXPERT_FORMAT)

__all__ = ["SUITE_NAMES", "TOY_GUIDANCE", "TOY_OWN_GUIDANCE", "World", "WorldConfig",
           "ensure_toy_model", "injection_records", "measure_toy_model", "mixsd_home",
           "suite_records", "toy_suites"]
