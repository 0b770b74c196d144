"""The ``results.json`` of an experiment: build, validate, read and write it.

Structure (``schema: mixsd.results/1``)::

    {"schema": "mixsd.results/1", "created": ISO time, "model": ..., "corpus": ...,
     "config": {...}, "versions": {...},
     "base": {"memorization": float|null, "paraphrase": float|null,
              "scores": {suite: score}},                       # the untouched model
     "runs": [{"name": "mixsd:0.3 lr=1e-05 seed=0", "method": "mixsd", "lambda": 0.3,
               "lr": 1e-05, "seed": 0, "selected_epoch": 2,      # 1-based, first peak
               "memorization": ..., "paraphrase": ..., "scores": {suite: score},
               "retention": {suite: % of base | null}, "retention_mean": ...,
               "drift_kl": ..., "target_nll": ..., "fisher": {"total": ..., "per_layer": {}},
               "seconds": ..., "epochs": [EPOCH, ...], ...}]}

    EPOCH = {"epoch": 1, "memorization", "paraphrase", "splits": {split: score},
             "scores", "retention", "retention_mean", "drift_kl",
             "extra": {other numeric metrics of the epoch, e.g. the trainer's loss}}

The top-level metrics of a run are those of its selected epoch (:func:`first_peak` of
memorisation). Scores are fractions in [0, 1]; retention is in percent.

A run's λ (``mix_lambda`` in the code, docs/method.md's λ) is written under the key ``"lambda"``,
the key every existing results.json uses; readers take it through :func:`run_lambda`, which
also accepts ``"mix_lambda"``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.errors import RecordError
from mixsd.evaluation.retention import retention_mean, retention_table
from mixsd.evaluation.schema import (
    LAMBDA_ALIASES,
    LAMBDA_KEY,
    TARGET_FIELDS,
    EpochResult,
    RunResult,
    TargetsSummary,
    run_lambda,
    run_name,
)
from mixsd.evaluation.selection import best_epoch, first_peak
from mixsd.io import atomic_write_json, versions

SCHEMA = "mixsd.results/1"
RUN_FIELDS = ("method", LAMBDA_KEY, "lr", "seed", "selected_epoch", "memorization", "paraphrase",
              "retention", "retention_mean", "target_nll", "fisher", "seconds", "epochs")
_KNOWN = ("epoch", "memorization", "paraphrase", "retention_mean", "drift_kl")


def make_base(scores: Mapping[str, float], *, memorization: float | None = None,
              paraphrase: float | None = None, **extra: Any) -> dict[str, Any]:
    """The ``base`` entry: the untouched model's suite scores and memorisation."""
    return {"memorization": memorization, "paraphrase": paraphrase,
            "scores": {k: float(v) for k, v in scores.items()}, **extra}


def epoch_entry(epoch: int, metrics: Mapping[str, float],
                base_scores: Mapping[str, float] | None = None) -> EpochResult:
    """An epoch entry from the evaluator's flat metrics (:mod:`mixsd.evaluation.callback`).

    With ``base_scores``, retention is recomputed from the scores; otherwise the flat
    ``retained/SUITE`` values are used as they are.
    """
    scores = {k[len("score/"):]: float(v) for k, v in metrics.items() if k.startswith("score/")}
    if base_scores is not None:
        retention = retention_table(scores, base_scores)
    else:
        retention = {k[len("retained/"):]: float(v) for k, v in metrics.items()
                     if k.startswith("retained/")}
    splits = {k[len("split/"):]: float(v) for k, v in metrics.items() if k.startswith("split/")}
    # Anything else numeric (the trainer's loss, eval_s, ...) is kept as it is.
    extra = {k: v for k, v in metrics.items() if k not in _KNOWN and not k.startswith(
        ("score/", "retained/", "split/")) and isinstance(v, (int, float))}
    mean = retention_mean(retention) if retention else metrics.get("retention_mean")
    return EpochResult(int(epoch), metrics.get("memorization"), metrics.get("paraphrase"),
                       splits, scores, retention, mean, metrics.get("drift_kl"), extra)


@dataclass(frozen=True)
class RunId:
    """Which run an entry is: its method, λ, learning rate and seed (None where the run has
    none: SFT's λ, an edit's learning rate) and its name (default :func:`run_name`)."""

    method: str
    mix_lambda: float | None = None
    lr: float | None = None
    seed: int | None = None
    name: str | None = None


def make_run(run_id: RunId, epochs: Sequence[Mapping[str, Any] | EpochResult], *,
             base_scores: Mapping[str, float] | None = None, target_nll: float | None = None,
             fisher: Mapping[str, Any] | None = None, seconds: float | None = None,
             select_floor: float | None = None, **extra: Any) -> RunResult:
    """One ``runs`` entry; the selected epoch is the first peak of memorisation that improves
    on ``select_floor`` (the base model's memorisation); ``best_epoch`` is the epoch of its
    highest value; ``extra`` are the entry's other keys (``label``, ``guidance``, ...).

    ``epochs`` are epoch entries or the evaluator's flat metrics (epoch = position + 1,
    unless the dict has an ``epoch`` key).
    """
    if not epochs:
        raise RecordError("a run needs at least one evaluated epoch", field="epochs")
    entries = [e if isinstance(e, EpochResult) else EpochResult.from_json(e) if "scores" in e
               else epoch_entry(int(e.get("epoch", i + 1)), e, base_scores)
               for i, e in enumerate(epochs)]
    curve = [e.memorization for e in entries]
    chosen = entries[first_peak(curve, floor=select_floor)]
    r = run_id
    return RunResult(
        name=r.name or run_name(r.method, r.mix_lambda, r.lr, r.seed), method=r.method,
        mix_lambda=r.mix_lambda, lr=r.lr, seed=r.seed, selected_epoch=chosen.epoch,
        memorization=chosen.memorization, paraphrase=chosen.paraphrase, scores=chosen.scores,
        retention=chosen.retention, retention_mean=chosen.retention_mean,
        drift_kl=chosen.drift_kl, target_nll=target_nll,
        fisher=dict(fisher) if fisher is not None else None, seconds=seconds,
        best_epoch=entries[best_epoch(curve)].epoch, epochs=tuple(entries), more=dict(extra))


def _plain(value: Any) -> Any:
    """A typed entry (or a mapping of them, like ``targets``) as JSON; anything else as is."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def make_results(base: Mapping[str, Any], runs: Sequence[RunResult | Mapping[str, Any]], *,
                 config: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """The whole results.json object (validated); typed entries in ``extra`` (``targets``:
    ``{label: TargetsSummary}``) are written as their JSON."""
    obj = {"schema": SCHEMA,
           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "config": dict(config or {}), "versions": versions(),
           **{k: _plain(v) for k, v in extra.items()}, "base": dict(base),
           "runs": [r.to_json() if isinstance(r, RunResult) else dict(r) for r in runs]}
    return validate_results(obj)


def target_summaries(summaries: Mapping[str, Sequence[Mapping[str, Any]]]
                     ) -> dict[str, TargetsSummary]:
    """results.json's ``targets``: what each method's targets hold (records, verified,
    attempts, naive fraction, seconds) from the summaries of its targets runs
    (``{label: [summary, ...]}``, one per targets file); with several files, the mean over
    them (``files`` says how many; ``wall_s`` is their sum)."""
    out = {}
    for label, rows in summaries.items():
        means: dict[str, Any] = {}
        for key in TARGET_FIELDS:
            values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            means[key] = (None if not values else sum(values) if key == "wall_s"
                          else sum(values) / len(values))
        # The realised lambdas (the lambda fallback), summed over the files.
        lambdas: dict[str, dict[str, int]] = {}
        for r in rows:
            for lam, counts in (r.get("realised_lambda") or {}).items():
                into = lambdas.setdefault(lam, {"verified": 0, "unverified": 0})
                for key, n in counts.items():
                    into[key] = into.get(key, 0) + int(n)
        out[label] = TargetsSummary(**means, files=len(rows), realised_lambda=lambdas)
    return out


def _number(value: Any, optional: bool = True) -> bool:
    if value is None:
        return optional
    return isinstance(value, (int, float)) and not isinstance(value, bool) and not (
        isinstance(value, float) and math.isnan(value))


def _check(ok: bool, msg: str, field: str, source: str | None) -> None:
    if not ok:
        raise RecordError(msg, path=source, field=field)


def validate_results(obj: Any, source: str | None = None) -> dict[str, Any]:
    """Check the structure above; raise :class:`RecordError` naming the field at fault."""
    _check(isinstance(obj, dict), "results must be a JSON object", "(root)", source)
    base = obj.get("base")
    _check(isinstance(base, dict), "missing or not an object", "base", source)
    _check(isinstance(base.get("scores", {}), dict), "must be an object", "base.scores", source)
    runs = obj.get("runs")
    _check(isinstance(runs, list), "missing or not a list", "runs", source)
    for i, run in enumerate(runs):
        where = f"runs[{i}]"
        _check(isinstance(run, dict), "must be an object", where, source)
        for key in RUN_FIELDS:
            present = any(k in run for k in LAMBDA_ALIASES) if key == LAMBDA_KEY else key in run
            _check(present, "missing required field", f"{where}.{key}", source)
        _check(isinstance(run["method"], str), "must be a string", f"{where}.method", source)
        _check(_number(run_lambda(run)), "must be a number or null", f"{where}.{LAMBDA_KEY}",
               source)
        for key in ("lr", "memorization", "paraphrase", "retention_mean", "target_nll",
                    "seconds"):
            _check(_number(run[key]), "must be a number or null", f"{where}.{key}", source)
        _check(isinstance(run["retention"], dict), "must be an object", f"{where}.retention",
               source)
        _check(run["fisher"] is None or isinstance(run["fisher"], dict),
               "must be an object or null", f"{where}.fisher", source)
        epochs = run["epochs"]
        _check(isinstance(epochs, list), "must be a list", f"{where}.epochs", source)
        numbers = [e.get("epoch") for e in epochs if isinstance(e, dict)]
        _check(len(numbers) == len(epochs), "each epoch must be an object", f"{where}.epochs",
               source)
        _check(run["selected_epoch"] is None or run["selected_epoch"] in numbers,
               f"{run['selected_epoch']!r} is not one of the run's epochs {numbers}",
               f"{where}.selected_epoch", source)
    return obj


def read_results(path: str | Path) -> dict[str, Any]:
    """Read and validate a results.json (a folder is read as ``FOLDER/results.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError("file not found (expected a results.json or a folder holding one)",
                          path=str(path)) from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    return validate_results(obj, str(path))


def write_results(path: str | Path, obj: Mapping[str, Any]) -> Path:
    """Validate and write atomically."""
    return atomic_write_json(path, validate_results(dict(obj), str(path)))


def retention_at_equal_memorization(runs: Sequence[Mapping[str, Any]],
                                    level: float | None = None
                                    ) -> tuple[float | None, dict[str, float | None]]:
    """Compare runs at the same memorisation: each run's ``retention_mean`` at its FIRST
    epoch whose memorisation reaches ``level``.

    ``level`` defaults to the highest memorisation that every run reaches (the minimum over
    runs of their best epoch). A run that never reaches it gets None.
    """
    best = [max((e.get("memorization") or 0.0) for e in r["epochs"]) for r in runs if r["epochs"]]
    if level is None:
        if not best:
            return None, {}
        level = min(best)
    out: dict[str, float | None] = {}
    for run in runs:
        hit = first_at_level(run, level)
        out[run.get("name") or run_name(run["method"], run_lambda(run), run.get("lr"),
                                        run.get("seed"))] = (
            hit.get("retention_mean") if hit else None)
    return level, out


def group_name(run: Mapping[str, Any]) -> str:
    """The run's name without its seed (``mixsd:0.3 lr=0.001``): runs that differ only in
    seed form one group."""
    import re

    name = run.get("name") or run_name(run["method"], run_lambda(run), run.get("lr"),
                                       run.get("seed"))
    return re.sub(r"\s*seed=\d+$", "", name) or name


def group_runs(runs: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Runs grouped by :func:`group_name`, in first-seen order."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for run in runs:
        groups.setdefault(group_name(run), []).append(run)
    return groups


def mean_spread(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample standard deviation, n) of the values that are numbers; the spread is
    None below two values, the mean None without any."""
    xs = [float(v) for v in values if _number(v, optional=False)]
    if not xs:
        return None, None, 0
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return mean, None, len(xs)
    return mean, math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)), len(xs)


def best_entry(run: Mapping[str, Any]) -> Mapping[str, Any]:
    """The epoch entry of the run's best epoch (highest memorisation)."""
    epochs = {e.get("epoch"): e for e in run.get("epochs", [])}
    return epochs.get(run.get("best_epoch")) or {}


def first_at_level(run: Mapping[str, Any], level: float) -> Mapping[str, Any] | None:
    """The run's first epoch entry whose memorisation is at or above ``level`` (None when it
    never gets there)."""
    return next((e for e in run.get("epochs", []) if (e.get("memorization") or 0.0) >= level),
                None)
