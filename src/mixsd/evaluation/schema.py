"""The typed entries of ``results.json``: :class:`EpochResult`, :class:`RunResult` and
:class:`TargetsSummary`, each with ``to_json`` / ``from_json``.

``to_json`` writes the keys in the order every existing results.json and ``entry.json`` holds
them (the fields below, then the entry's other keys in the order they were added), so a
file written through these classes is the file written before them. ``from_json`` reads old
files too: a run's λ under ``"lambda"`` or ``"mix_lambda"``, a missing ``name`` made from
the run's fields, a missing optional field as None. The structure is described, and
checked, by :mod:`mixsd.evaluation.results`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LAMBDA_KEY = "lambda"  # results.json's name for mix_lambda (what existing artifacts hold)
LAMBDA_ALIASES = (LAMBDA_KEY, "mix_lambda")  # read, in this order


def run_name(method: str, mix_lambda: float | None = None, lr: float | None = None,
             seed: int | None = None) -> str:
    """``mixsd:0.3 lr=1e-05 seed=0`` (parts that are None are left out)."""
    name = method if mix_lambda is None or method == "sft" else f"{method}:{mix_lambda:g}"
    if lr is not None:
        name += f" lr={lr:g}"
    if seed is not None:
        name += f" seed={seed}"
    return name


def run_lambda(run: Mapping[str, Any]) -> float | None:
    """A run's ``mix_lambda``, under either key of :data:`LAMBDA_ALIASES` (None if absent)."""
    return next((run[key] for key in LAMBDA_ALIASES if key in run), None)


def _rest(obj: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in known}


@dataclass(frozen=True)
class EpochResult:
    """One evaluated epoch of a run (epoch 0: the base model). Scores are fractions in
    [0, 1]; retention is in percent of the base model's score; ``extra`` holds the epoch's
    other numeric metrics (the trainer's loss, ``eval_s``, ...)."""

    epoch: int
    memorization: float | None = None
    paraphrase: float | None = None
    splits: dict[str, float] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)
    retention: dict[str, float | None] = field(default_factory=dict)
    retention_mean: float | None = None
    drift_kl: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    more: dict[str, Any] = field(default_factory=dict)  # keys of other writers, kept as read

    FIELDS = ("epoch", "memorization", "paraphrase", "splits", "scores", "retention",
              "retention_mean", "drift_kl", "extra")

    def to_json(self) -> dict[str, Any]:
        return {**{k: getattr(self, k) for k in self.FIELDS}, **self.more}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EpochResult:
        return cls(int(obj["epoch"]), obj.get("memorization"), obj.get("paraphrase"),
                   dict(obj.get("splits") or {}), dict(obj.get("scores") or {}),
                   dict(obj.get("retention") or {}), obj.get("retention_mean"),
                   obj.get("drift_kl"), dict(obj.get("extra") or {}), _rest(obj, cls.FIELDS))


@dataclass(frozen=True)
class RunResult:
    """One ``runs`` entry: which run (method, λ, learning rate, seed), its selected epoch's
    metrics at the top level, every epoch, and the keys its recipe adds (``more``: ``label``,
    ``guidance``, ``error_buckets``, ``edit``, a round's ``round``, ...)."""

    name: str
    method: str
    mix_lambda: float | None = None
    lr: float | None = None
    seed: int | None = None
    selected_epoch: int | None = None
    memorization: float | None = None
    paraphrase: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    retention: dict[str, float | None] = field(default_factory=dict)
    retention_mean: float | None = None
    drift_kl: float | None = None
    target_nll: float | None = None
    fisher: dict[str, Any] | None = None
    seconds: float | None = None
    best_epoch: int | None = None
    epochs: tuple[EpochResult, ...] = ()
    more: dict[str, Any] = field(default_factory=dict)

    # The JSON keys in file order; "lambda" is the field mix_lambda.
    KEYS = ("name", "method", LAMBDA_KEY, "lr", "seed", "selected_epoch", "memorization",
            "paraphrase", "scores", "retention", "retention_mean", "drift_kl", "target_nll",
            "fisher", "seconds", "best_epoch", "epochs")

    @staticmethod
    def _attr(key: str) -> str:
        return "mix_lambda" if key == LAMBDA_KEY else key

    def to_json(self) -> dict[str, Any]:
        out = {k: getattr(self, self._attr(k)) for k in self.KEYS}
        out["epochs"] = [e.to_json() for e in self.epochs]
        return {**out, **self.more}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> RunResult:
        mix_lambda = run_lambda(obj)
        name = obj.get("name") or run_name(obj["method"], mix_lambda, obj.get("lr"),
                                           obj.get("seed"))
        values = {cls._attr(k): obj.get(k) for k in cls.KEYS[3:-1]}
        values.update(scores=dict(obj.get("scores") or {}),
                      retention=dict(obj.get("retention") or {}))
        epochs = tuple(EpochResult.from_json(e) for e in obj.get("epochs") or ())
        return cls(name=name, method=obj["method"], mix_lambda=mix_lambda, epochs=epochs,
                   more=_rest(obj, (*cls.KEYS, *LAMBDA_ALIASES)), **values)

    def updated(self, **changes: Any) -> RunResult:
        """A copy with ``changes``: a field keeps its place in the file, any other key joins
        ``more`` (after the keys already there), as a dict update would."""
        names = {f.name for f in dataclasses.fields(self)}
        fields = {k: v for k, v in changes.items() if k in names and k != "more"}
        more = {**self.more, **{k: v for k, v in changes.items() if k not in fields}}
        return dataclasses.replace(self, **fields, more=more)

    def epoch(self, number: int | None) -> EpochResult | None:
        """The entry of epoch ``number`` (None when the run has no such epoch)."""
        return next((e for e in self.epochs if e.epoch == number), None)

    def get(self, key: str, default: Any = None) -> Any:
        """A JSON key's value (a field, ``"lambda"`` or a key of ``more``)."""
        if key in self.KEYS:
            return getattr(self, self._attr(key))
        return self.more.get(key, default)


TARGET_FIELDS = ("records", "verified", "unverified", "max_length", "mean_attempts",
                 "mean_naive_token_fraction", "mean_num_tokens", "generated_tokens", "wall_s")


@dataclass(frozen=True)
class TargetsSummary:
    """results.json's ``targets[label]``: what a method's targets hold, the mean over its
    targets files (``files``; ``wall_s`` is their sum) and the realised λ counts of the λ
    fallback (``{λ: {"verified": n, "unverified": n}}``, summed; left out when empty)."""

    records: float | None = None
    verified: float | None = None
    unverified: float | None = None
    max_length: float | None = None
    mean_attempts: float | None = None
    mean_naive_token_fraction: float | None = None
    mean_num_tokens: float | None = None
    generated_tokens: float | None = None
    wall_s: float | None = None
    files: int = 0
    realised_lambda: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: getattr(self, k) for k in (*TARGET_FIELDS, "files")}
        if self.realised_lambda:
            out["realised_lambda"] = self.realised_lambda
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> TargetsSummary:
        return cls(**{k: obj.get(k) for k in TARGET_FIELDS}, files=int(obj.get("files") or 0),
                   realised_lambda=dict(obj.get("realised_lambda") or {}))
