"""``EvalConfig``: what ``mixsd eval`` scores, and how (the recipe is
:mod:`mixsd.evaluation.run`).

A plug-in's suite kind brings its own options (:class:`mixsd.registry.SuiteOption`: the toy
world's ``toy_items`` and ``toy_seed``); they travel in ``suite_options``, and each also
answers to its own key (``--toy-items 50``, YAML ``toy_items: 50``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixsd.answers import check_extractor
from mixsd.config import StageConfig, check_finite, option
from mixsd.errors import ConfigError
from mixsd.evaluation.suites import check_suites
from mixsd.models import (
    check_device,
    check_dtype,
    hub_options,
    revision_option,
    trust_remote_code_option,
)
from mixsd.prompts import (
    chat_options,
    chat_template_kwargs_option,
    check_guidance,
    resolve_guidance_name,
    system_prompt_option,
)
from mixsd.registry import SuiteOption, default_model, model_defaults, suite_options

LMEVAL_FIELDS = ("lmeval_include", "lmeval_chat_template", "lmeval_fewshot_as_multiturn",
                 "lmeval_gen_kwargs", "lmeval_unsafe_code")


@dataclass
class EvalConfig(StageConfig):
    """What ``mixsd eval`` scores, and how."""

    stage = "eval"

    model: str | None = option(None, "model id, local folder, or an alias")
    suite: list[str] = option(default_factory=lambda: list(model_defaults(default_model()).suites),
                              help="suites, comma-separated: general[:N], instruct, math:F.jsonl, "
                              "mcq:F.jsonl, lmeval:TASK, records:F.jsonl[@SPLIT], "
                              "paraphrase:F.jsonl, or a plug-in's kind (the toy world's: toy, "
                              "toy:NAME); known:SPEC scores SPEC on the known set of "
                              "--base-model (the items it gets right)")
    base_model: str | None = option(None, "also report each score as %% of this base model's "
                                    "(base scores are cached)")
    batch_size: int = option(32, "prompts per forward pass", min=1)
    max_new_tokens: int = option(64, "most tokens generated per answer (records suites)", min=1)
    math_max_new_tokens: int = option(512, "most tokens generated per answer (math suites)",
                                      min=1)
    guidance: str | None = option(None, "prompt layout of records/paraphrase suites "
                                  "(knowledge, math, a plug-in's; default: the model's "
                                  "registered preset, else knowledge)")
    chat_template_kwargs: dict[str, Any] = chat_template_kwargs_option()
    system_prompt: str | None = system_prompt_option()
    revision: str | None = revision_option()
    trust_remote_code: bool = trust_remote_code_option()
    extractor: str = option("auto", "answer extractor of records suites: auto, boxed, number, "
                            "contains, math or regex:PATTERN")
    mcq_normalize: str = option("none", "multiple choice: none (summed log-likelihood) or chars "
                                "(per character)", choices=("none", "chars"))
    lmeval_include: str | None = option(None, "folder of extra lm-eval task YAML files (added "
                                        "to lm-eval's built-in tasks)")
    lmeval_chat_template: bool = option(
        False, "lm-eval: apply the model's chat template (instruct models), with "
        "--chat-template-kwargs (Qwen3: thinking off unless asked) and --system-prompt as "
        "the system instruction", later=True)
    lmeval_fewshot_as_multiturn: bool = option(
        True, "lm-eval: few-shot examples as chat turns (with --lmeval-chat-template)",
        later=True)
    lmeval_gen_kwargs: dict[str, Any] = option(
        default_factory=dict, later=True,
        help="lm-eval: generation settings of generative tasks (e.g. max_gen_toks=1024,"
        "temperature=0)")
    lmeval_unsafe_code: bool = option(
        False, "lm-eval: allow tasks that execute the model's generated code (HumanEval, "
        "MBPP); run only in a sandbox", later=True)
    num_fewshot: int | None = option(None, "lm-eval few-shot examples (default: the task's)",
                                     min=0)
    limit: int | None = option(None, "lm-eval: only the first N documents", min=1)
    suite_options: dict[str, Any] = option(
        default_factory=dict, help="options of plug-in suite kinds, NAME=VALUE (the toy "
        "world's: toy_items=N questions per toy suite, toy_seed=S); each also has its own "
        "flag")
    cache_dir: str | None = option(None, "base score cache folder (default $MIXSD_HOME/cache)")
    device: str = option("auto", "device: auto, cpu, cuda, cuda:1, mps")
    dtype: str = option("auto", "model dtype: auto, float32, bfloat16, float16")
    out: str | None = option(None, "folder for scores.json and per-sample logs")

    def validate(self) -> None:
        super().validate()
        check_extractor(self.extractor)
        check_guidance(self.guidance)
        check_device(self.device)
        check_dtype(self.dtype)
        if self.suite:  # none: a composite's default (its model's suites)
            check_suites(self.suite)
        self.suite_options = check_suite_options(self.suite_options)

    def check_complete(self) -> None:
        """Check what ``mixsd eval`` needs and a composite leaves empty: a model and a
        suite."""
        if not self.model:
            raise ConfigError("model must be given (flag --model)")
        check_suites(self.suite)

    # -- the plug-ins' suite options: their own keys, recorded flat --------------------
    @classmethod
    def extra_keys(cls) -> dict[str, str]:
        return {name: f"suite_options.{name}" for name in suite_options()}

    @classmethod
    def composite_keys(cls) -> dict[str, str]:
        return {flat: name for name, opt in suite_options().items() for flat in opt.also}

    @classmethod
    def key_spec(cls, key: str) -> tuple[Any, dict[str, Any]]:
        if key in cls.extra_keys():
            opt = suite_options()[key]
            return type(opt.default), {"help": opt.help, "min": opt.min, "default": opt.default}
        return super().key_spec(key)

    def to_dict(self) -> dict[str, Any]:
        """The recorded config: a suite option as its own key (a ``recorded`` one always,
        any other where set), not inside ``suite_options``."""
        found = super().to_dict()
        del found["suite_options"]
        found.update(self.plugin_options(recorded_only=True))
        return found

    @classmethod
    def later_defaults(cls) -> dict[str, Any]:
        return {**super().later_defaults(),
                **{name: opt.default for name, opt in suite_options().items() if not opt.recorded}}

    def plugin_options(self, *, recorded_only: bool = False) -> dict[str, Any]:
        """The plug-ins' suite options: those set, and the ``recorded`` ones at their default
        (``recorded_only``: only those set and the recorded ones; else every option)."""
        found = {name: opt.default for name, opt in suite_options().items()
                 if opt.recorded or not recorded_only}
        return {**found, **self.suite_options}

    def composite_options(self) -> dict[str, Any]:
        """The suite options as a composite records them in its keys: under the flat key
        it has always used (the comparison's ``eval_items``), any other only where set."""
        options, flat = self.plugin_options(), self.composite_keys()
        return {**{k: v for k, v in self.suite_options.items() if k not in flat.values()},
                **{key: options[name] for key, name in flat.items()}}

    def changed_options(self) -> dict[str, Any]:
        """The suite options set to something else than their default."""
        known = suite_options()
        return {k: v for k, v in self.suite_options.items() if v != known[k].default}

    # -----------------------------------------------------------------------------------
    def hub_options(self) -> dict[str, Any]:
        """The loader keywords of a hub model (:func:`mixsd.models.hub_options`): both the
        model's and the base model's (a local folder ignores them)."""
        return hub_options(self.revision, self.trust_remote_code)

    def chat_options(self) -> dict[str, Any]:
        """The chat settings given (:func:`mixsd.prompts.chat_options`), as renderer keywords."""
        return chat_options(self.chat_template_kwargs, self.system_prompt)

    def resolved_guidance(self) -> str:
        return resolve_guidance_name(self.guidance, self.model)

    def suite_build_options(self) -> dict[str, Any]:
        """Every option of :func:`mixsd.evaluation.suites.get_suites`."""
        return {"chat": self.chat_options(), "extractor": self.extractor,
                "max_new_tokens": self.max_new_tokens,
                "math_max_new_tokens": self.math_max_new_tokens,
                "guidance": self.resolved_guidance(), "mcq_normalize": self.mcq_normalize,
                **lmeval_options(self), "num_fewshot": self.num_fewshot, "limit": self.limit,
                **self.plugin_options()}


def check_suite_options(values: dict[str, Any], *,
                        flag: str = "--suite-options") -> dict[str, Any]:
    """``values`` checked against the registered suite options (name, type, range) and
    coerced to each option's type."""
    known = suite_options()
    found = {}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(f"suite_options: unknown option {name!r}; the registered suite "
                              f"kinds take {', '.join(known) or 'none'} (flag {flag})")
        found[name] = _coerce_option(name, value, known[name], "--" + name.replace("_", "-"))
    return found


def _coerce_option(name: str, value: Any, opt: SuiteOption, flag: str) -> Any:
    kind = type(opt.default)
    try:
        number = kind(value) if kind in (int, float) and not isinstance(value, bool) else value
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be of type {kind.__name__}, got {value!r} "
                          f"(flag {flag})") from None
    if kind is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{name} must be of type int, got {value!r} (flag {flag})")
    if kind in (int, float):
        check_finite(number, name, flag)
        if opt.min is not None and number < opt.min:
            raise ConfigError(f"{name} must be in [{opt.min:g}, inf], got {number:g} "
                              f"(flag {flag})")
    return number


def lmeval_options(config: EvalConfig) -> dict[str, Any]:
    """The lm-eval settings of an :class:`EvalConfig` as
    :func:`~mixsd.evaluation.suites.get_suites` options."""
    return {name: getattr(config, name) for name in LMEVAL_FIELDS}
