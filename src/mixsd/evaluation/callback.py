"""Per-epoch evaluation: the training callback (``epoch_callback(model, tokenizer, epoch)``).

The trainer calls the evaluator after every epoch; the flat ``{name: float}`` it returns goes
to ``RUN_DIR/metrics.jsonl``. Keys:

* ``memorization``, ``paraphrase`` and ``split/NAME`` for each other split of the records
  (``split/2hop``, ``split/retrieval``, ...);
* ``score/SUITE`` for each retention suite, and ``retained/SUITE`` (% of the base score) plus
  ``retention_mean`` when base scores are given;
* ``drift_kl`` when a base model or its :class:`~mixsd.evaluation.drift.DriftReference`
  is given (on ``drift_prompts``; by default up to 32
  questions of the held-out suites, which are in the model's own language and unrelated to
  the injected facts, else :data:`~mixsd.evaluation.drift.NEUTRAL_PROMPTS`);
* ``eval_s``, the seconds this evaluation took.

With ``retention_levels`` (e.g. ``[0.5, 0.8]``) the evaluation is staged to save time:
memorisation is scored every epoch, and everything else (the other splits, the retention
suites, drift) only at the epochs where memorisation first reaches one of the levels (the
epochs an equal-memorisation comparison reads) and at the last epoch (``epochs``). Such an
epoch carries ``full_eval: 1.0``; the others ``full_eval: 0.0``. Every score that is
computed is the same as without staging.

:func:`mixsd.evaluation.results.epoch_entry` turns these into a results.json epoch entry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.evaluation.drift import DriftReference
from mixsd.evaluation.retention import retained, retention_mean
from mixsd.evaluation.samples import write_sample_logs
from mixsd.evaluation.suites import memorization_suites
from mixsd.records import KnowledgeRecord


@dataclass(frozen=True)
class EvaluatorOptions:
    """The keywords of :func:`make_epoch_evaluator`: the base model's scores (retention), the
    base model or its drift reference and the drift prompts (drift), how memorisation is
    asked and scored, the sample logs' folder and the staged evaluation's levels."""

    base_scores: Mapping[str, float] | None = None
    base_model: Any = None
    drift_prompts: Sequence[str] | None = None
    extractor: str = "auto"
    max_new_tokens: int = 64
    guidance: str = "knowledge"
    batch_size: int = 32
    samples_dir: str | Path | None = None
    retention_levels: Sequence[float] = ()
    epochs: int | None = None
    chat: Mapping[str, Any] | None = None
    drift_reference: DriftReference | None = None


class EpochEvaluator:
    """Callable ``(model, tokenizer, epoch) -> dict[str, float]``; see the module docstring.

    ``chat`` holds the chat settings given (:func:`mixsd.prompts.chat_options`) of the
    memorisation suites (the other suites carry their own). ``last_results`` holds the
    previous call's suite results (with their samples), e.g. for error buckets; ``samples_dir`` (optional) keeps every epoch's samples as
    ``samples_dir/epoch-N/SUITE.jsonl``.
    """

    def __init__(self, suites: Mapping[str, Any],
                 memorisation_records: Sequence[KnowledgeRecord] | None = None,
                 options: EvaluatorOptions | None = None):
        o = options or EvaluatorOptions()
        self.suites = dict(suites)
        self.chat = dict(o.chat or {})
        self.memorisation = memorization_suites(list(memorisation_records or []),
                                                extractor=o.extractor,
                                                max_new_tokens=o.max_new_tokens,
                                                guidance=o.guidance, chat=self.chat)
        self.base_scores = dict(o.base_scores or {})
        self.base_model = o.base_model  # dropped once its drift reference is made
        self.drift_reference: DriftReference | None = o.drift_reference
        self.drift_prompts = list(o.drift_prompts) if o.drift_prompts is not None else \
            held_out_prompts(self.suites)
        self.batch_size = o.batch_size
        self.samples_dir = Path(o.samples_dir) if o.samples_dir else None
        self.last_results: dict[str, Any] = {}
        self.retention_levels = sorted(float(x) for x in o.retention_levels)
        self.epochs = o.epochs
        self._best = float("-inf")  # the best memorisation so far (staged evaluation)

    def __call__(self, model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        start = time.perf_counter()
        was_training = getattr(model, "training", False)
        model.eval()
        try:
            metrics = self._evaluate(model, tokenizer, epoch)
        finally:
            if was_training:
                model.train()
        metrics["eval_s"] = time.perf_counter() - start
        return metrics

    def full_at(self, epoch: int, memorization: float | None) -> bool:
        """Whether ``epoch`` gets the whole evaluation (always, unless staged)."""
        if not self.retention_levels:
            return True
        if self.epochs is not None and epoch >= self.epochs:
            return True
        if memorization is None:
            return True
        new = any(self._best < level <= memorization for level in self.retention_levels)
        return new

    def _evaluate(self, model: Any, tokenizer: Any, epoch: int) -> dict[str, float]:
        metrics: dict[str, float] = {}
        results = {}
        first = "memorization" if "memorization" in self.memorisation else None
        if first is not None:
            results[first] = self.memorisation[first].evaluate(model, tokenizer,
                                                               batch_size=self.batch_size)
            metrics[first] = float(results[first].score)
        full = self.full_at(epoch, metrics.get(first) if first else None)
        if first is not None:
            self._best = max(self._best, metrics[first])
        if self.retention_levels:
            metrics["full_eval"] = 1.0 if full else 0.0
        if not full:
            self.last_results = results
            if self.samples_dir is not None:
                write_sample_logs(self.samples_dir, results, epoch)
            return metrics
        for name, suite in self.memorisation.items():
            if name == first:
                continue
            results[name] = suite.evaluate(model, tokenizer, batch_size=self.batch_size)
            key = name if name == "paraphrase" else f"split/{name}"
            metrics[key] = float(results[name].score)
        table = {}
        for name, suite in self.suites.items():
            results[name] = suite.evaluate(model, tokenizer, batch_size=self.batch_size)
            metrics[f"score/{name}"] = float(results[name].score)
            if name in self.base_scores:
                table[name] = retained(results[name].score, self.base_scores[name])
                if table[name] is not None:
                    metrics[f"retained/{name}"] = table[name]
        mean = retention_mean(table)
        if mean is not None:
            metrics["retention_mean"] = mean
        reference = self.drift_base(tokenizer)
        if reference is not None:
            metrics["drift_kl"] = reference.kl(model)
        self.last_results = results
        if self.samples_dir is not None:
            write_sample_logs(self.samples_dir, results, epoch)
        return metrics


    def drift_base(self, tokenizer: Any) -> DriftReference | None:
        """The base model's log-probabilities on the drift prompts (the given reference, or
        made from ``base_model`` at the first use, after which the evaluator lets the base
        model go); None without either (no drift)."""
        if self.drift_reference is None and self.base_model is not None:
            self.drift_reference = DriftReference.from_model(
                self.base_model, tokenizer, self.drift_prompts, batch_size=self.batch_size)
            self.base_model = None
        return self.drift_reference


def held_out_prompts(suites: Mapping[str, Any], limit: int = 32) -> list[str] | None:
    """Up to ``limit`` questions taken in turn from the suites' records (None if none)."""
    pools = [list(getattr(s, "prompts", None) or [r.prompt for r in getattr(s, "records", [])])
             for s in suites.values()]
    pools = [p for p in pools if p]
    picked: list[str] = []
    for i in range(max((len(p) for p in pools), default=0)):
        picked.extend(p[i] for p in pools if i < len(p))
        if len(picked) >= limit:
            break
    return picked[:limit] or None


def make_epoch_evaluator(suites: Mapping[str, Any],
                         memorisation_records: Sequence[KnowledgeRecord] | None = None,
                         **options: Any) -> EpochEvaluator:
    """Build the training callback; ``options`` are :class:`EvaluatorOptions`' fields."""
    return EpochEvaluator(suites, memorisation_records, EvaluatorOptions(**options))
