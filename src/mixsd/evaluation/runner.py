"""``mixsd eval``: score any model on named suites, optionally as % of a base model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.answers import check_extractor
from mixsd.artifacts import COMPLETE, Reuse, StageDir, open_stage
from mixsd.config import StageConfig, option
from mixsd.errors import ConfigError
from mixsd.evaluation.samples import write_sample_logs
from mixsd.io import atomic_write_json
from mixsd.models import (
    check_device,
    check_dtype,
    hub_options,
    model_key,
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
from mixsd.registry import default_model, model_defaults


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
    toy_items: int = option(200, "questions per toy suite", min=1)
    cache_dir: str | None = option(None, "base score cache folder (default $MIXSD_HOME/cache)")
    device: str = option("auto", "device: auto, cpu, cuda, cuda:1, mps")
    dtype: str = option("auto", "model dtype: auto, float32, bfloat16, float16")
    out: str | None = option(None, "folder for scores.json and per-sample logs")

    def validate(self) -> None:
        super().validate()
        check_extractor(self.extractor)
        if not self.model:
            raise ConfigError("model must be given (flag --model)")
        check_guidance(self.guidance)
        check_device(self.device)
        check_dtype(self.dtype)
        from mixsd.evaluation.suites import check_suites

        check_suites(self.suite)

    def hub_options(self) -> dict[str, Any]:
        """The loader keywords of a hub model (:func:`mixsd.models.hub_options`): both the
        model's and the base model's (a local folder ignores them)."""
        return hub_options(self.revision, self.trust_remote_code)

    def chat_options(self) -> dict[str, Any]:
        """The chat settings given (:func:`mixsd.prompts.chat_options`), as renderer keywords."""
        return chat_options(self.chat_template_kwargs, self.system_prompt)

    def suite_options(self) -> dict[str, Any]:
        return {"chat": self.chat_options(), "extractor": self.extractor, "max_new_tokens": self.max_new_tokens,
                "math_max_new_tokens": self.math_max_new_tokens,
                "guidance": resolve_guidance_name(self.guidance, self.model),
                "mcq_normalize": self.mcq_normalize, **lmeval_options(self),
                "num_fewshot": self.num_fewshot, "limit": self.limit,
                "toy_items": self.toy_items}


LMEVAL_FIELDS = ("lmeval_include", "lmeval_chat_template", "lmeval_fewshot_as_multiturn",
                 "lmeval_gen_kwargs", "lmeval_unsafe_code")


def lmeval_options(config: Any) -> dict[str, Any]:
    """The lm-eval settings of ``config`` (an :class:`EvalConfig` or a comparison's config,
    which inherits them) as :func:`~mixsd.evaluation.suites.get_suites` options."""
    return {name: getattr(config, name) for name in LMEVAL_FIELDS}


def run_eval(config: EvalConfig) -> dict[str, Any]:
    """Score ``config.model`` on every suite; returns ``{"model", "scores", "n", "base",
    "retention", "retention_mean", "wall_s"}`` (base entries only with ``base_model``);
    with ``out``, also ``scores.json``, the sample logs and run.json there."""
    start = time.perf_counter()
    stage = open_eval_dir(config) if config.out else None  # refused before any model loads
    try:
        return _evaluate(config, start, stage)
    finally:
        if stage is not None:
            stage.close()


def _evaluate(config: EvalConfig, start: float, stage: StageDir | None) -> dict[str, Any]:
    """The evaluation of :func:`run_eval`, written into ``stage`` when there is one."""
    from mixsd.evaluation.general import prepare_suites
    from mixsd.evaluation.retention import (
        base_scores,
        fingerprint_path,
        retention_mean,
        retention_table,
    )
    from mixsd.evaluation.suites import get_suites
    from mixsd.models import load_model_and_tokenizer, resolve_model_path

    suites = get_suites(config.suite, **config.suite_options())
    base_summary: dict[str, Any] = {}
    if config.base_model:
        # The base model first: known-set suites (general) are restricted to what it knows.
        base, base_tok = load_model_and_tokenizer(config.base_model, device=config.device,
                                                  dtype=config.dtype, **config.hub_options())
        base_id = model_key(resolve_model_path(config.base_model), config.revision)
        info = prepare_suites(suites, base, base_tok, model_fingerprint=fingerprint_path(base_id),
                              batch_size=config.batch_size, cache_dir=config.cache_dir)
        base_summary["base"] = base_scores(base, base_tok, suites, cache_dir=config.cache_dir,
                                           model_id=base_id, batch_size=config.batch_size)
        if info:
            base_summary["suite_info"] = info
        del base
    model, tokenizer = load_model_and_tokenizer(config.model, device=config.device,
                                                dtype=config.dtype, **config.hub_options())
    results = {name: suite.evaluate(model, tokenizer, batch_size=config.batch_size)
               for name, suite in suites.items()}
    summary: dict[str, Any] = {"model": config.model,
                               "scores": {k: float(r.score) for k, r in results.items()},
                               "n": {k: int(r.n) for k, r in results.items()}, **base_summary}
    if config.base_model:
        summary["retention"] = retention_table(summary["scores"], summary["base"])
        summary["retention_mean"] = retention_mean(summary["retention"])
    summary["wall_s"] = time.perf_counter() - start
    if stage is not None:
        atomic_write_json(stage.path / "scores.json", summary)
        write_sample_logs(stage.path / "samples", results)
        stage.write_info(config, status=COMPLETE, wall_s=round(summary["wall_s"], 3))
    return summary


# What may change between two evaluations written to one folder (they decide no score).
EVAL_MUTABLE = ("out", "device", "batch_size", "cache_dir")


def open_eval_dir(config: EvalConfig) -> StageDir:
    """Open ``config.out`` (:func:`mixsd.artifacts.open_stage`) for ``scores.json``, the
    sample logs and run.json: the same evaluation writes the folder again, another one
    (other model, suites or settings) is refused, naming the fields that differ."""
    out = Path(str(config.out))
    return open_stage(out, "eval", config.decisive_dict(),
                      reuse=Reuse(mutable=EVAL_MUTABLE, defaults=config.later_defaults(),
                                  has_outputs=(out / "scores.json").is_file()))
